#!/usr/bin/env node
// payments-http — a small payments API protected by idemkey (the Node.js
// rewrite of client/cpp/examples/payments_http.cc; its contract is
// tests/conformance/README.md, "The example app's contract").
//
//   idemkeyd --listen=127.0.0.1:50051 &
//   node client/node/examples/payments-http.js --listen_port=8080 --idemkey=127.0.0.1:50051 &
//   curl -i -X POST localhost:8080/v1/charges -H 'X-Org-Id: acme' \
//        -H 'Idempotency-Key: 5f0c...' -d '{"amount":1000}'
//
// Routes:
//   POST /v1/charges       a charge (201), numbered by this process
//                          (X-Fail: throw makes the handler throw: 500)
//   GET  /v1/charges       the number of charges made (not protected: GET)
//   POST /v1/auth/login    excluded from the middleware by configuration
// SIGTERM or SIGINT stops it after the requests in flight.
// Needs the package built (npm run build).

"use strict";

const path = require("node:path");
const express = require("express");
const { idempotency } = require(path.join(__dirname, "..", "dist"));
const { setUpExample } = require("./example-flags");

function main() {
  const ex = setUpExample({ program: "payments-http", protocol: "HTTP", listenPort: 8080 });
  const { flags, keys } = ex;

  // One client (one channel) per process, shared by every request. The
  // tenant is X-Org-Id mapped by tenantNameFor (the default): no header,
  // no tenant.
  const protect = idempotency(keys, {
    requireKey: true,
    excludedRoutes: ["POST /v1/auth/login"],
    notFinalStatuses: [429, 503],
    ...ex.middlewareOptions,
  });

  let charges = 0;
  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");
  // The middleware reads the raw body itself; a bypassed request's is read here.
  const rawBody = express.raw({ type: () => true, limit: "16mb" });

  app.post("/v1/charges", protect, rawBody, (req, res, next) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    setTimeout(() => {
      try {
        if (req.get("X-Fail") === "throw") throw new Error("charge failed (X-Fail: throw)");
        const n = ++charges;
        res.status(201);
        res.set("Location", `/v1/charges/ch_${n}`);
        res.setHeader("Content-Type", "application/json");
        res.send(Buffer.concat([Buffer.from(`{"id":"ch_${n}","request":`), body, Buffer.from("}\n")]));
      } catch (err) {
        next(err); // an async handler passes its error on: Express answers 500
      }
    }, flags.charge_delay);
  });
  app.get("/v1/charges", (_req, res) => {
    res.setHeader("Content-Type", "application/json");
    res.send(`{"charges":${charges}}\n`);
  });
  app.post("/v1/auth/login", protect, (_req, res) => {
    res.setHeader("Content-Type", "application/json");
    res.send('{"token":"example"}\n');
  });
  // Errors: a bare 500, without the stack.
  app.use((err, _req, res, _next) => {
    ex.log(String(err && err.message));
    if (res.headersSent) return res.destroy();
    res.status(err.status >= 400 && err.status < 600 ? err.status : 500);
    res.setHeader("Content-Type", "text/plain");
    res.send("Internal Server Error\n");
  });

  const server = app.listen(flags.listen_port, "127.0.0.1", () => {
    server.keepAliveTimeout = 5000;
    ex.listening(server.address().port);
  });
  server.on("error", (e) => ex.fail(`cannot listen on 127.0.0.1:${flags.listen_port}: ${e.message}`));
  server.on("connection", (socket) => socket.setNoDelay(true));
  ex.onStop((done) => {
    server.close(done);
    // server.close waits for the requests in flight; idle keep-alive
    // connections would hold it open.
    if (typeof server.closeIdleConnections === "function") server.closeIdleConnections();
  });
}

main();
