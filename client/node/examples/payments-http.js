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

const fs = require("node:fs");
const path = require("node:path");
const express = require("express");
const { Client, idempotency, parseDuration } = require(path.join(__dirname, "..", "dist"));

const FLAGS = {
  listen_port: { kind: "int", def: 8080, help: "HTTP port on 127.0.0.1 (0: any free port)" },
  port_file: { kind: "string", def: "", help: "write the bound HTTP port here" },
  idemkey: { kind: "string", def: "127.0.0.1:50051", help: "idemkeyd address" },
  idemkey_cacert: { kind: "string", def: "", help: "talk TLS to idemkeyd, verifying it with this PEM CA bundle" },
  idemkey_token_env: {
    kind: "string",
    def: "IDEMKEY_TOKEN",
    help: "environment variable holding the bearer token (none when unset or empty)",
  },
  fail_open: { kind: "bool", def: false, help: "run requests unprotected when idemkeyd gives no answer" },
  lease: { kind: "duration", def: 30000, help: "lease of each request's key; renewed every third of it" },
  require_tenant: { kind: "bool", def: false, help: "refuse a covered request without X-Org-Id (401)" },
  wait_for_result: {
    kind: "duration",
    def: 0,
    help: "a retry while the first request runs waits this long for its result",
  },
  charge_delay: { kind: "duration", def: 0, help: "time each charge takes" },
};

function usage() {
  const lines = ["usage: payments-http [--listen_port=8080] [--idemkey=HOST:PORT] [flags]", ""];
  for (const [name, f] of Object.entries(FLAGS)) lines.push(`  --${name}  ${f.help} (default ${JSON.stringify(f.def)})`);
  return lines.join("\n");
}

function fail(message) {
  process.stderr.write(`payments-http: ${message}\n`);
  process.exit(1);
}

/** --name=value, and bare --name / --noname for booleans. */
function parseFlags(argv) {
  const out = {};
  for (const [name, f] of Object.entries(FLAGS)) out[name] = f.def;
  for (const arg of argv) {
    if (arg === "--help" || arg === "-h") {
      process.stdout.write(usage() + "\n");
      process.exit(0);
    }
    const m = /^--?([A-Za-z0-9_]+)(?:=(.*))?$/s.exec(arg);
    if (!m) fail(`unexpected argument ${JSON.stringify(arg)}\n${usage()}`);
    let name = m[1];
    let value = m[2];
    let f = FLAGS[name];
    if (!f && name.startsWith("no") && FLAGS[name.slice(2)]?.kind === "bool" && value === undefined) {
      name = name.slice(2);
      f = FLAGS[name];
      value = "false";
    }
    if (!f) fail(`unknown flag --${name}\n${usage()}`);
    switch (f.kind) {
      case "bool":
        if (value === undefined || value === "true" || value === "1") out[name] = true;
        else if (value === "false" || value === "0") out[name] = false;
        else fail(`--${name}: not a boolean: ${JSON.stringify(value)}`);
        break;
      case "int":
        if (value === undefined || !/^-?\d+$/.test(value)) fail(`--${name}: not an integer: ${JSON.stringify(value)}`);
        out[name] = Number(value);
        break;
      case "duration":
        if (value === undefined) fail(`--${name} needs a value`);
        try {
          out[name] = parseDuration(value);
        } catch (e) {
          fail(`--${name}: ${e.message}`);
        }
        break;
      default:
        if (value === undefined) fail(`--${name} needs a value`);
        out[name] = value;
    }
  }
  return out;
}

function main() {
  const flags = parseFlags(process.argv.slice(2));
  const token = process.env[flags.idemkey_token_env] ?? "";
  let keys;
  try {
    keys = new Client({
      address: flags.idemkey,
      ...(flags.idemkey_cacert ? { rootCertFile: flags.idemkey_cacert } : {}),
      token,
    });
  } catch (e) {
    fail(e.message);
  }

  // One client (one channel) per process, shared by every request. The
  // tenant is X-Org-Id mapped by tenantNameFor (the default): no header,
  // no tenant.
  const protect = idempotency(keys, {
    requireKey: true,
    excludedRoutes: ["POST /v1/auth/login"],
    notFinalStatuses: [429, 503],
    failOpen: flags.fail_open,
    lease: flags.lease,
    heartbeatInterval: Math.max(1, Math.floor(flags.lease / 3)),
    requireTenant: flags.require_tenant,
    waitForResult: flags.wait_for_result,
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
    process.stderr.write(`payments-http: ${err && err.message}\n`);
    if (res.headersSent) return res.destroy();
    res.status(err.status >= 400 && err.status < 600 ? err.status : 500);
    res.setHeader("Content-Type", "text/plain");
    res.send("Internal Server Error\n");
  });

  const server = app.listen(flags.listen_port, "127.0.0.1", () => {
    server.keepAliveTimeout = 5000;
    const port = server.address().port;
    if (flags.port_file) {
      const tmp = `${flags.port_file}.tmp`;
      fs.writeFileSync(tmp, `${port}\n`);
      fs.renameSync(tmp, flags.port_file);
    }
    process.stderr.write(`payments-http listening on 127.0.0.1:${port}, idemkeyd at ${flags.idemkey}\n`);
  });
  server.on("error", (e) => fail(`cannot listen on 127.0.0.1:${flags.listen_port}: ${e.message}`));
  server.on("connection", (socket) => socket.setNoDelay(true));

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // After the requests in flight; idle keep-alive connections are closed.
    server.close(() => {
      keys.close();
      process.stderr.write("payments-http stopped\n");
      process.exit(0);
    });
    if (typeof server.closeIdleConnections === "function") server.closeIdleConnections();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main();
