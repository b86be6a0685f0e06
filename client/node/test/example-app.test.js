"use strict";
// examples/payments-http.js against a real idemkeyd, as the conformance
// suite (tests/conformance/README.md) drives it.
const test = require("node:test");
const assert = require("node:assert/strict");
const { idemkeydSkipReason, startIdemkeyd, startExampleApp, waitHeld, closedPort, request, newKey, waitFor } = require("./helpers/env");

const skip = idemkeydSkipReason();

async function startApp(idemkey, flags = []) {
  const app = await startExampleApp("payments-http", idemkey, flags);
  const post = (p, { key, org = "acme", body = '{"amount":100}', headers = {} } = {}) =>
    request(app.port, {
      method: "POST",
      path: p,
      body,
      headers: {
        ...(key !== undefined ? { "Idempotency-Key": key } : {}),
        ...(org !== null ? { "X-Org-Id": org } : {}),
        ...headers,
      },
    });
  const charges = async () => JSON.parse((await request(app.port, { method: "GET", path: "/v1/charges" })).body).charges;
  return { ...app, post, charges };
}

function problemType(res) {
  assert.equal(res.headers["content-type"], "application/problem+json");
  return JSON.parse(res.body.toString()).type;
}

test.describe("payments-http example against idemkeyd", { skip }, () => {
  let daemon;
  test.before(async () => {
    daemon = await startIdemkeyd();
  });
  test.after(async () => {
    if (daemon) await daemon.stop();
  });

  test("replay, 422s, 400s, excluded and GET, tenant mapping", async () => {
    const app = await startApp(daemon.address);
    try {
      const key = newKey();
      const a = await app.post("/v1/charges", { key, org: "Acme Corp" });
      assert.equal(a.status, 201);
      assert.equal(a.headers.location, "/v1/charges/ch_1");
      assert.equal(a.headers["content-type"], "application/json");
      assert.equal(a.body.toString(), '{"id":"ch_1","request":{"amount":100}}\n');
      const b = await app.post("/v1/charges", { key, org: "Acme Corp" });
      assert.equal(b.status, 201);
      assert.equal(b.headers["idempotency-replayed"], "true");
      assert.equal(b.headers.location, a.headers.location);
      assert.equal(b.headers["content-type"], a.headers["content-type"]);
      assert.ok(b.body.equals(a.body));
      assert.equal(await app.charges(), 1);

      const other = await app.post("/v1/charges", { key, org: "Acme Corp", body: '{"amount":200}' });
      assert.equal(other.status, 422);
      assert.equal(problemType(other), "urn:idemkey:key-reused");
      const k2 = newKey();
      assert.equal((await app.post("/v1/charges?x=1", { key: k2 })).status, 201);
      assert.equal((await app.post("/v1/charges?x=2", { key: k2 })).status, 422);

      const missing = await app.post("/v1/charges", {});
      assert.equal(missing.status, 400);
      assert.equal(problemType(missing), "urn:idemkey:missing-key");
      for (const bad of ["x".repeat(257), "a b"]) {
        const r = await app.post("/v1/charges", { key: bad });
        assert.equal(r.status, 400);
        assert.equal(problemType(r), "urn:idemkey:malformed-key");
      }
      const login = await app.post("/v1/auth/login", {});
      assert.equal(login.status, 200);
      assert.equal(login.body.toString(), '{"token":"example"}\n');
      const get = await request(app.port, { method: "GET", path: "/v1/charges" });
      assert.equal(get.status, 200);
      assert.equal(get.body.toString(), '{"charges":2}\n');
    } finally {
      const r = await app.stop();
      assert.equal(r.code, 0, "SIGTERM stops the app cleanly");
    }
  });

  test("in flight: 409 with Retry-After; --wait_for_result replays", async () => {
    const app = await startApp(daemon.address, ["--charge_delay=1500ms"]);
    const waiting = await startApp(daemon.address, ["--charge_delay=1500ms", "--wait_for_result=5s"]);
    try {
      const key = newKey();
      const first = app.post("/v1/charges", { key });
      await waitHeld(daemon.address, "acme", key);
      const busy = await app.post("/v1/charges", { key });
      assert.equal(busy.status, 409);
      assert.ok(Number(busy.headers["retry-after"]) >= 1);
      assert.equal(problemType(busy), "urn:idemkey:in-progress");
      const waited = await waiting.post("/v1/charges", { key });
      const done = await first;
      assert.equal(done.status, 201);
      assert.equal(waited.status, 201);
      assert.equal(waited.headers["idempotency-replayed"], "true");
      assert.ok(waited.body.equals(done.body));
      assert.equal(await waiting.charges(), 0);
    } finally {
      await app.stop();
      await waiting.stop();
    }
  });

  test("--require_tenant: 401 without X-Org-Id", async () => {
    const app = await startApp(daemon.address, ["--require_tenant"]);
    try {
      const r = await app.post("/v1/charges", { key: newKey(), org: null });
      assert.equal(r.status, 401);
      assert.equal(problemType(r), "urn:idemkey:missing-tenant");
      assert.equal(await app.charges(), 0);
    } finally {
      await app.stop();
    }
  });

  test("concurrent-32: the handler runs once; the rest 201 or 409", async () => {
    const app = await startApp(daemon.address, ["--charge_delay=300ms"]);
    try {
      const key = newKey();
      const all = await Promise.all(Array.from({ length: 32 }, () => app.post("/v1/charges", { key })));
      for (const r of all) assert.ok(r.status === 201 || r.status === 409, String(r.status));
      assert.equal(await app.charges(), 1);
    } finally {
      await app.stop();
    }
  });

  test("throw-releases: 500, then a retry runs (201)", async () => {
    const app = await startApp(daemon.address);
    try {
      const key = newKey();
      const thrown = await app.post("/v1/charges", { key, headers: { "X-Fail": "throw" } });
      assert.equal(thrown.status, 500);
      assert.equal(await app.charges(), 0);
      const retry = await app.post("/v1/charges", { key });
      assert.equal(retry.status, 201);
      assert.equal(retry.headers["idempotency-replayed"], undefined);
    } finally {
      await app.stop();
    }
  });

  test("fail-closed 503 and --fail_open 201 when idemkeyd is unreachable", async () => {
    const nowhere = `127.0.0.1:${await closedPort()}`;
    const closed = await startApp(nowhere);
    const open = await startApp(nowhere, ["--fail_open"]);
    try {
      const r = await closed.post("/v1/charges", { key: newKey() });
      assert.equal(r.status, 503);
      assert.equal(problemType(r), "urn:idemkey:unavailable");
      assert.equal(await closed.charges(), 0);
      const o = await open.post("/v1/charges", { key: newKey() });
      assert.equal(o.status, 201);
      assert.equal(await open.charges(), 1);
    } finally {
      await closed.stop();
      await open.stop();
    }
  });

  test("killed-app-lease: 409 while the dead app's lease holds, 201 after", async () => {
    const dying = await startApp(daemon.address, ["--lease=2s", "--charge_delay=5s"]);
    const other = await startApp(daemon.address, ["--lease=2s"]);
    try {
      const key = newKey();
      dying.post("/v1/charges", { key }).catch(() => {});
      await waitHeld(daemon.address, "acme", key);
      assert.equal((await other.post("/v1/charges", { key })).status, 409);
      await dying.stop("SIGKILL");
      const r = await waitFor(async () => {
        const x = await other.post("/v1/charges", { key });
        assert.ok(x.status === 409 || x.status === 201, String(x.status));
        return x.status === 201 ? x : null;
      }, 10000, "the lease to lapse");
      assert.equal(r.status, 201);
      assert.equal(await other.charges(), 1);
    } finally {
      await dying.stop("SIGKILL");
      await other.stop();
    }
  });
});
