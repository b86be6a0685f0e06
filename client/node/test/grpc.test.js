"use strict";
// The gRPC server wrapper and the client interceptor, over the
// InMemoryKeyService.
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const { GrpcIdempotency, InMemoryKeyService, idempotencyKeyInterceptor } = require("..");
const { newKey } = require("./helpers/env");

const def = protoLoader.loadSync(path.join(__dirname, "fixtures", "charges.proto"), { longs: Number });
const Charges = grpc.loadPackageDefinition(def).test.v1.Charges;

async function start(options = {}) {
  const keys = new InMemoryKeyService();
  const state = { runs: 0, keysSeen: [] };
  const idem = new GrpcIdempotency(keys, { requireKey: true, ...options });
  const server = new grpc.Server();
  server.addService(
    Charges.service,
    idem.wrapService(Charges.service, {
      Charge(call, callback) {
        state.runs++;
        state.keysSeen.push(call.metadata.get("idempotency-key")[0]);
        if (call.request.fail === "throw") throw new Error("boom");
        if (call.request.fail === "denied") {
          const md = new grpc.Metadata();
          md.set("reason", "no");
          return callback({ code: grpc.status.PERMISSION_DENIED, details: "not yours", metadata: md });
        }
        const initial = new grpc.Metadata();
        initial.set("x-run", String(state.runs));
        call.sendMetadata(initial);
        const trailer = new grpc.Metadata();
        trailer.set("x-trailer", "t");
        callback(null, { id: `ch_${state.runs}`, amount: call.request.amount }, trailer);
      },
    }),
  );
  const port = await new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const client = new Charges(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    interceptors: [idempotencyKeyInterceptor],
  });
  const charge = (request, md = {}) =>
    new Promise((resolve) => {
      const metadata = new grpc.Metadata();
      for (const [k, v] of Object.entries(md)) metadata.set(k, v);
      const out = {};
      const call = client.Charge(request, metadata, (err, reply) => {
        out.err = err;
        out.reply = reply;
        if (out.status) resolve(out);
        else out.done = true;
      });
      call.on("metadata", (m) => (out.initial = m.getMap()));
      call.on("status", (s) => {
        out.status = s;
        if (out.done) resolve(out);
      });
    });
  return {
    state,
    charge,
    close: () => {
      client.close();
      server.forceShutdown();
    },
  };
}

test("gRPC: a retry replays code, reply and metadata, with idempotency-replayed", async () => {
  const s = await start();
  try {
    const md = { "idempotency-key": newKey(), "x-org-id": "acme" };
    const a = await s.charge({ amount: 5 }, md);
    assert.equal(a.err, null);
    assert.equal(a.reply.id, "ch_1");
    assert.equal(Number(a.reply.amount), 5);
    const b = await s.charge({ amount: 5 }, md);
    assert.equal(b.err, null);
    assert.equal(b.reply.id, "ch_1");
    assert.equal(b.initial["idempotency-replayed"], "true");
    assert.equal(b.initial["x-run"], "1");
    assert.equal(b.status.metadata.get("x-trailer")[0], "t");
    assert.equal(s.state.runs, 1);
    // Another request with the key: FAILED_PRECONDITION.
    const c = await s.charge({ amount: 6 }, md);
    assert.equal(c.err.code, grpc.status.FAILED_PRECONDITION);
  } finally {
    s.close();
  }
});

test("gRPC: errors are stored and replayed; a throw is INTERNAL and releases", async () => {
  const s = await start();
  try {
    const md = { "idempotency-key": newKey(), "x-org-id": "acme" };
    const a = await s.charge({ amount: 1, fail: "denied" }, md);
    assert.equal(a.err.code, grpc.status.PERMISSION_DENIED);
    const b = await s.charge({ amount: 1, fail: "denied" }, md);
    assert.equal(b.err.code, grpc.status.PERMISSION_DENIED);
    assert.equal(b.err.details, "not yours");
    assert.equal(b.err.metadata.get("reason")[0], "no");
    assert.equal(s.state.runs, 1);
    const md2 = { "idempotency-key": newKey(), "x-org-id": "acme" };
    const t = await s.charge({ amount: 1, fail: "throw" }, md2);
    assert.equal(t.err.code, grpc.status.INTERNAL);
    assert.equal(t.err.details, "/test.v1.Charges/Charge failed: boom");
    const again = await s.charge({ amount: 1, fail: "throw" }, md2);
    assert.equal(again.err.code, grpc.status.INTERNAL);
    assert.equal(s.state.runs, 3);
  } finally {
    s.close();
  }
});

test("gRPC: the interceptor adds a key; rejections map to gRPC codes", async () => {
  const s = await start({ requireTenant: true });
  try {
    const a = await s.charge({ amount: 1 }, { "x-org-id": "acme" });
    assert.equal(a.err, null);
    assert.match(s.state.keysSeen[0], /^[0-9a-f-]{36}$/);
    const noTenant = await s.charge({ amount: 1 }, {});
    assert.equal(noTenant.err.code, grpc.status.UNAUTHENTICATED);
    const bad = await s.charge({ amount: 1 }, { "idempotency-key": "x".repeat(300), "x-org-id": "acme" });
    assert.equal(bad.err.code, grpc.status.INVALID_ARGUMENT);
  } finally {
    s.close();
  }
});
