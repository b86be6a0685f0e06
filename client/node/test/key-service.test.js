"use strict";
// The transition table of docs/semantics.md, run against the
// InMemoryKeyService and the real idemkeyd alike.
const test = require("node:test");
const assert = require("node:assert/strict");
const { Client, InMemoryKeyService, GrpcStatus, fingerprint, newAttemptId } = require("..");
const { code, idemkeydSkipReason, startIdemkeyd, waitFor, newKey } = require("./helpers/env");

const FP = fingerprint("POST", "/v1/x", Buffer.from("a"));
const FP2 = fingerprint("POST", "/v1/x", Buffer.from("b"));
const RESPONSE = {
  statusCode: 201,
  headers: [
    { name: "Location", value: Buffer.from("/v1/x/1") },
    { name: "Set-Cookie", value: Buffer.from("a=1") },
    { name: "Set-Cookie", value: Buffer.from("b=2") },
  ],
  body: Buffer.from([0, 1, 2, 255]),
  bodyOmitted: false,
};

function cases(name, makeKeys, { cleanup } = {}) {
  test.describe(`KeyService semantics: ${name}`, () => {
    let keys;
    test.before(async () => {
      keys = await makeKeys();
    });
    if (cleanup) test.after(() => cleanup(keys));
    const tenant = `t${process.pid}`;
    const reserve = (key, over = {}) =>
      keys.reserve({ tenant, key, fingerprint: FP, attemptId: newAttemptId(), leaseMs: 30000, ...over });

    test("a new key: OWNER; a retry of the same attempt: the same token", async () => {
      const key = newKey();
      const attemptId = newAttemptId();
      const a = await reserve(key, { attemptId });
      assert.equal(a.outcome, "OWNER");
      assert.ok(a.fencingToken > 0n);
      assert.ok(a.leaseExpiresAt.getTime() > Date.now() + 20000);
      const again = await reserve(key, { attemptId });
      assert.equal(again.outcome, "OWNER");
      assert.equal(again.fencingToken, a.fencingToken);
    });

    test("another attempt while the lease is live: IN_PROGRESS with the lease end", async () => {
      const key = newKey();
      const a = await reserve(key);
      const b = await reserve(key);
      assert.equal(b.outcome, "IN_PROGRESS");
      assert.equal(b.leaseExpiresAt.getTime(), a.leaseExpiresAt.getTime());
    });

    test("another fingerprint: MISMATCH, in progress and completed", async () => {
      const key = newKey();
      const a = await reserve(key);
      assert.equal((await reserve(key, { fingerprint: FP2 })).outcome, "MISMATCH");
      await keys.complete({ tenant, key, fencingToken: a.fencingToken, response: RESPONSE });
      assert.equal((await reserve(key, { fingerprint: FP2 })).outcome, "MISMATCH");
    });

    test("Complete stores the response byte for byte; a retry gets COMPLETED", async () => {
      const key = newKey();
      const a = await reserve(key);
      const c = await keys.complete({ tenant, key, fencingToken: a.fencingToken, response: RESPONSE });
      assert.ok(c.expiresAt.getTime() > Date.now() + 3600_000);
      const r = await reserve(key);
      assert.equal(r.outcome, "COMPLETED");
      assert.equal(r.response.statusCode, 201);
      assert.deepEqual(
        r.response.headers.map((h) => [h.name, h.value.toString("hex")]),
        RESPONSE.headers.map((h) => [h.name, h.value.toString("hex")]),
      );
      assert.ok(r.response.body.equals(RESPONSE.body));
      assert.equal(r.response.bodyOmitted, false);
      // A retried Complete with the same token: OK, the first response kept.
      const again = await keys.complete({
        tenant,
        key,
        fencingToken: a.fencingToken,
        response: { ...RESPONSE, statusCode: 500 },
      });
      assert.equal(again.expiresAt.getTime(), c.expiresAt.getTime());
      assert.equal((await keys.lookup(tenant, key)).response.statusCode, 201);
    });

    test("Release makes the key absent; the calls of an absent key are NOT_FOUND", async () => {
      const key = newKey();
      const a = await reserve(key);
      await keys.release({ tenant, key, fencingToken: a.fencingToken });
      const t = a.fencingToken;
      assert.equal(await code(keys.release({ tenant, key, fencingToken: t })), GrpcStatus.NOT_FOUND);
      assert.equal(await code(keys.heartbeat({ tenant, key, fencingToken: t })), GrpcStatus.NOT_FOUND);
      assert.equal(await code(keys.complete({ tenant, key, fencingToken: t, response: RESPONSE })), GrpcStatus.NOT_FOUND);
      assert.equal(await code(keys.lookup(tenant, key)), GrpcStatus.NOT_FOUND);
      const b = await reserve(key);
      assert.equal(b.outcome, "OWNER");
      assert.ok(b.fencingToken > a.fencingToken);
    });

    test("a wrong token is ABORTED; a completed record refuses Release and Heartbeat", async () => {
      const key = newKey();
      const a = await reserve(key);
      const wrong = a.fencingToken + 1000n;
      assert.equal(await code(keys.heartbeat({ tenant, key, fencingToken: wrong })), GrpcStatus.ABORTED);
      assert.equal(await code(keys.release({ tenant, key, fencingToken: wrong })), GrpcStatus.ABORTED);
      assert.equal(await code(keys.complete({ tenant, key, fencingToken: wrong, response: RESPONSE })), GrpcStatus.ABORTED);
      const hb = await keys.heartbeat({ tenant, key, fencingToken: a.fencingToken, leaseMs: 60000 });
      assert.ok(hb.leaseExpiresAt.getTime() > Date.now() + 50000);
      await keys.complete({ tenant, key, fencingToken: a.fencingToken, response: RESPONSE });
      const t = a.fencingToken;
      assert.equal(await code(keys.release({ tenant, key, fencingToken: t })), GrpcStatus.FAILED_PRECONDITION);
      assert.equal(await code(keys.heartbeat({ tenant, key, fencingToken: t })), GrpcStatus.FAILED_PRECONDITION);
      assert.equal(await code(keys.release({ tenant, key, fencingToken: wrong })), GrpcStatus.ABORTED);
    });

    test("a lapsed lease: taken over with a larger token; the old token is ABORTED", async () => {
      const key = newKey();
      const a = await reserve(key, { leaseMs: 1000 });
      // Poll: IN_PROGRESS while the lease holds, OWNER once it lapsed.
      const b = await waitFor(async () => {
        const r = await reserve(key, { attemptId: "taker-" + key.slice(-8) });
        if (r.outcome === "IN_PROGRESS") return null;
        return r;
      }, 10000, "the lease to lapse");
      assert.equal(b.outcome, "OWNER");
      assert.ok(b.fencingToken > a.fencingToken);
      const t = a.fencingToken;
      assert.equal(await code(keys.heartbeat({ tenant, key, fencingToken: t })), GrpcStatus.ABORTED);
      assert.equal(await code(keys.complete({ tenant, key, fencingToken: t, response: RESPONSE })), GrpcStatus.ABORTED);
      await keys.complete({ tenant, key, fencingToken: b.fencingToken, response: RESPONSE });
      assert.equal((await reserve(key)).outcome, "COMPLETED");
    });

    test("a lapsed lease nobody took: ABORTED for its token; its attempt gets it back", async () => {
      const key = newKey();
      const attemptId = newAttemptId();
      const a = await reserve(key, { leaseMs: 1000, attemptId });
      // Another attempt sees IN_PROGRESS until the lease end has passed.
      await waitFor(() => Date.now() > a.leaseExpiresAt.getTime() + 20, 10000, "the lease end");
      assert.equal(await code(keys.heartbeat({ tenant, key, fencingToken: a.fencingToken })), GrpcStatus.ABORTED);
      const again = await reserve(key, { attemptId, leaseMs: 30000 });
      assert.equal(again.outcome, "OWNER");
      assert.equal(again.fencingToken, a.fencingToken);
      await keys.release({ tenant, key, fencingToken: a.fencingToken });
    });

    test("Lookup reads a record without changing it", async () => {
      const key = newKey();
      const a = await reserve(key);
      const rec = await keys.lookup(tenant, key);
      assert.equal(rec.state, "IN_PROGRESS");
      assert.equal(rec.fencingToken, a.fencingToken);
      assert.ok(rec.fingerprint.equals(FP));
      assert.equal((await reserve(key)).outcome, "IN_PROGRESS");
    });

    test("invalid values are INVALID_ARGUMENT", async () => {
      assert.equal(await code(reserve("my key")), GrpcStatus.INVALID_ARGUMENT);
      assert.equal(await code(reserve("x".repeat(257))), GrpcStatus.INVALID_ARGUMENT);
      assert.equal(await code(reserve(newKey(), { tenant: "Acme" })), GrpcStatus.INVALID_ARGUMENT);
      assert.equal(await code(reserve(newKey(), { fingerprint: Buffer.alloc(31) })), GrpcStatus.INVALID_ARGUMENT);
      assert.equal(await code(reserve(newKey(), { leaseMs: 500 })), GrpcStatus.INVALID_ARGUMENT);
      assert.equal(await code(reserve(newKey(), { ttlMs: 1000 })), GrpcStatus.INVALID_ARGUMENT);
      assert.equal(await code(reserve(newKey(), { attemptId: "" })), GrpcStatus.INVALID_ARGUMENT);
    });

    test("a response over the size limit: RESOURCE_EXHAUSTED, the lease kept", async () => {
      const key = newKey();
      const a = await reserve(key);
      const big = { ...RESPONSE, body: Buffer.alloc(4 * 1024 * 1024 + 10) };
      assert.equal(await code(keys.complete({ tenant, key, fencingToken: a.fencingToken, response: big })), GrpcStatus.RESOURCE_EXHAUSTED);
      assert.equal((await keys.lookup(tenant, key)).state, "IN_PROGRESS");
      await keys.complete({
        tenant,
        key,
        fencingToken: a.fencingToken,
        response: { ...RESPONSE, body: Buffer.alloc(0), bodyOmitted: true },
      });
      const r = await reserve(key);
      assert.equal(r.outcome, "COMPLETED");
      assert.equal(r.response.bodyOmitted, true);
    });
  });
}

cases("InMemoryKeyService", () => new InMemoryKeyService());

const skip = idemkeydSkipReason();
if (skip) {
  test("KeyService semantics: idemkeyd", { skip }, () => {});
} else {
  let daemon;
  cases(
    "idemkeyd",
    async () => {
      daemon = await startIdemkeyd();
      return new Client({ address: daemon.address });
    },
    {
      cleanup: async (keys) => {
        keys.close();
        await daemon.stop();
      },
    },
  );
}
