"use strict";
// examples/payments-grpc.js against a real idemkeyd, as the conformance
// suite (tests/conformance/README.md, "payments-grpc") drives it. Replies
// are read as bytes and compared with protobuf encoded here by hand: the
// app must store what C++ and Go would, for their apps to replay it.
const test = require("node:test");
const assert = require("node:assert/strict");
const grpc = require("@grpc/grpc-js");
const { Client, fingerprint } = require("..");
const { idemkeydSkipReason, startIdemkeyd, startExampleApp, waitHeld, closedPort, newKey } = require("./helpers/env");

const skip = idemkeydSkipReason();
const PATH = "/idemkey.examples.Payments/CreateCharge";

function varint(n) {
  let v = BigInt.asUintN(64, BigInt(n));
  const out = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}
const int64 = (field, n) => Buffer.concat([varint(field << 3), varint(n)]);
const str = (field, s) => Buffer.concat([varint((field << 3) | 2), varint(Buffer.byteLength(s)), Buffer.from(s)]);
// CreateChargeRequest and Charge, canonically (fields by number, defaults left out).
const chargeRequest = (amount, currency = "") =>
  Buffer.concat([...(amount ? [int64(1, amount)] : []), ...(currency ? [str(2, currency)] : [])]);
const charge = (id, amount, currency = "") =>
  Buffer.concat([str(1, id), int64(2, amount), ...(currency ? [str(3, currency)] : [])]);

async function startApp(idemkey, flags = []) {
  const app = await startExampleApp("payments-grpc", idemkey, flags);
  const client = new grpc.Client(`127.0.0.1:${app.port}`, grpc.credentials.createInsecure());
  /** One CreateCharge of request bytes; resolves {code, details, value, initial, trailing}. */
  const call = (request, { key, org = "acme", md = {} } = {}) =>
    new Promise((resolve) => {
      const metadata = new grpc.Metadata();
      if (key !== undefined) metadata.set("idempotency-key", key);
      if (org !== null) metadata.set("x-org-id", org);
      for (const [k, v] of Object.entries(md)) metadata.set(k, v);
      const out = { initial: {} };
      let pending = 2;
      const done = () => --pending === 0 && resolve(out);
      const identity = (b) => b;
      const c = client.makeUnaryRequest(PATH, identity, identity, request, metadata, (_err, value) => {
        out.value = value;
        done();
      });
      c.on("metadata", (m) => (out.initial = m.getMap()));
      c.on("status", (s) => {
        Object.assign(out, { code: s.code, details: s.details, trailing: s.metadata });
        done();
      });
    });
  return {
    ...app,
    call,
    stop: async (signal) => {
      client.close();
      return app.stop(signal);
    },
  };
}

test.describe("payments-grpc example against idemkeyd", { skip }, () => {
  let daemon;
  let keys;
  test.before(async () => {
    daemon = await startIdemkeyd();
    keys = new Client({ address: daemon.address });
  });
  test.after(async () => {
    if (keys) keys.close();
    if (daemon) await daemon.stop();
  });

  test("replay: the same bytes and x-charge-id, stored as C++ stores them; other request, missing key", async () => {
    const app = await startApp(daemon.address);
    try {
      const key = newKey();
      const request = chargeRequest(1000, "EUR");
      const a = await app.call(request, { key });
      assert.equal(a.code, grpc.status.OK, a.details);
      assert.deepEqual(a.value, charge("ch_1", 1000, "EUR"));
      assert.equal(a.initial["x-charge-id"], "ch_1");
      assert.equal(a.initial["idempotency-replayed"], undefined);
      const b = await app.call(request, { key });
      assert.equal(b.code, grpc.status.OK);
      assert.deepEqual(b.value, a.value);
      assert.equal(b.initial["x-charge-id"], "ch_1");
      assert.equal(b.initial["idempotency-replayed"], "true");

      const rec = await keys.lookup("acme", key);
      assert.equal(rec.state, "COMPLETED");
      assert.deepEqual(rec.fingerprint, fingerprint("grpc", PATH, request));
      assert.equal(rec.response.statusCode, 0);
      assert.deepEqual(
        rec.response.headers.map((h) => [h.name, h.value.toString()]),
        [["initial/x-charge-id", "ch_1"]],
      );
      assert.deepEqual(rec.response.body, charge("ch_1", 1000, "EUR"));

      assert.equal((await app.call(chargeRequest(2000, "EUR"), { key })).code, grpc.status.FAILED_PRECONDITION);
      const c = await app.call(request, { key: newKey(), org: "Acme Corp" });
      assert.deepEqual(c.value, charge("ch_2", 1000, "EUR"));
      const missing = await app.call(request, {});
      assert.equal(missing.code, grpc.status.INVALID_ARGUMENT);
      // Without x-org-id the call is not protected: it runs, nothing stored.
      const bare = await app.call(request, { key: newKey(), org: null });
      assert.deepEqual(bare.value, charge("ch_3", 1000, "EUR"));
      assert.equal(bare.initial["idempotency-replayed"], undefined);
    } finally {
      const r = await app.stop();
      assert.equal(r.code, 0, "SIGTERM stops the app cleanly");
    }
  });

  test("amount ≤ 0: INVALID_ARGUMENT stored and replayed; int64 kept exact; empty fields left out", async () => {
    const app = await startApp(daemon.address);
    try {
      const key = newKey();
      const a = await app.call(chargeRequest(0), { key });
      assert.equal(a.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(a.details, "amount must be positive, not 0");
      const b = await app.call(chargeRequest(0), { key });
      assert.equal(b.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(b.details, a.details);
      assert.equal(b.initial["idempotency-replayed"], "true");

      const min = await app.call(chargeRequest(-(2n ** 63n)), { key: newKey() });
      assert.equal(min.details, "amount must be positive, not -9223372036854775808");
      const big = 2n ** 53n + 1n; // a Number would round it
      const r = await app.call(chargeRequest(big), { key: newKey() });
      assert.deepEqual(r.value, charge("ch_1", big));
      // A client may send an empty string; proto3 (and so C++ and Go) writes none back.
      const explicitEmpty = Buffer.concat([int64(1, 5), str(2, ""), str(3, "")]);
      const e = await app.call(explicitEmpty, { key: newKey() });
      assert.deepEqual(e.value, charge("ch_2", 5));
    } finally {
      await app.stop();
    }
  });

  test("in flight: ABORTED with retry-after; SIGTERM waits for the call", async () => {
    const app = await startApp(daemon.address, ["--charge_delay=1500ms"]);
    try {
      const key = newKey();
      const first = app.call(chargeRequest(100), { key });
      await waitHeld(daemon.address, "acme", key);
      const busy = await app.call(chargeRequest(100), { key });
      assert.equal(busy.code, grpc.status.ABORTED);
      assert.ok(Number(busy.trailing.get("retry-after")[0]) >= 1);
      const stopped = app.stop();
      assert.deepEqual((await first).value, charge("ch_1", 100));
      assert.equal((await stopped).code, 0);
    } finally {
      await app.stop();
    }
  });

  test("concurrent-32: the handler runs once; the rest ch_1 or ABORTED", async () => {
    const app = await startApp(daemon.address, ["--charge_delay=300ms"]);
    try {
      const key = newKey();
      const all = await Promise.all(Array.from({ length: 32 }, () => app.call(chargeRequest(100), { key })));
      for (const r of all) {
        if (r.code === grpc.status.OK) assert.deepEqual(r.value, charge("ch_1", 100));
        else assert.equal(r.code, grpc.status.ABORTED, r.details);
      }
      assert.deepEqual((await app.call(chargeRequest(100), { key: newKey() })).value, charge("ch_2", 100));
    } finally {
      await app.stop();
    }
  });

  test("x-fail: throw: INTERNAL and released; a retry runs (ch_1)", async () => {
    const app = await startApp(daemon.address);
    try {
      const key = newKey();
      const thrown = await app.call(chargeRequest(100), { key, md: { "x-fail": "throw" } });
      assert.equal(thrown.code, grpc.status.INTERNAL);
      assert.equal(thrown.details, `${PATH} failed: the charge failed (x-fail: throw)`);
      const retry = await app.call(chargeRequest(100), { key });
      assert.deepEqual(retry.value, charge("ch_1", 100));
      assert.equal(retry.initial["idempotency-replayed"], undefined);
    } finally {
      await app.stop();
    }
  });

  test("--require_tenant: UNAUTHENTICATED without x-org-id", async () => {
    const app = await startApp(daemon.address, ["--require_tenant"]);
    try {
      assert.equal((await app.call(chargeRequest(100), { key: newKey(), org: null })).code, grpc.status.UNAUTHENTICATED);
    } finally {
      await app.stop();
    }
  });

  test("idemkeyd unreachable: UNAVAILABLE; --fail_open runs the call", async () => {
    const nowhere = `127.0.0.1:${await closedPort()}`;
    const closed = await startApp(nowhere);
    const open = await startApp(nowhere, ["--fail_open"]);
    try {
      assert.equal((await closed.call(chargeRequest(100), { key: newKey() })).code, grpc.status.UNAVAILABLE);
      assert.deepEqual((await open.call(chargeRequest(100), { key: newKey() })).value, charge("ch_1", 100));
    } finally {
      await closed.stop();
      await open.stop();
    }
  });
});
