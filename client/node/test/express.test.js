"use strict";
// The Express middleware over the InMemoryKeyService: the table "What the
// app's clients see" of docs/semantics.md.
const test = require("node:test");
const assert = require("node:assert/strict");
const express = require("express");
const { idempotency, InMemoryKeyService, KeyServiceError, GrpcStatus } = require("..");
const { request, newKey, waitFor } = require("./helpers/env");

/** An app with POST /v1/charges (and friends) behind the middleware. */
async function startApp(options = {}, serviceOptions = {}) {
  const keys = options.keys ?? new InMemoryKeyService(serviceOptions);
  const events = [];
  const app = express();
  const state = { runs: 0, status: 201, delayMs: 0, bigBody: 0 };
  const mw = idempotency(keys, {
    requireKey: true,
    excludedRoutes: ["POST /v1/auth/login"],
    observer: (e) => events.push(e),
    ...options,
  });
  app.use(mw);
  app.post("/v1/charges", (req, res, next) => {
    state.runs++;
    const n = state.runs;
    const fail = req.get("X-Fail");
    setTimeout(() => {
      if (fail === "next") return next(new Error("handler failed"));
      res.status(state.status);
      res.set("Location", `/v1/charges/ch_${n}`);
      res.append("Set-Cookie", "a=1");
      res.append("Set-Cookie", "b=2");
      res.type("application/json");
      if (state.bigBody) return res.send(Buffer.alloc(state.bigBody, 0x61));
      res.send(Buffer.concat([Buffer.from(`{"id":"ch_${n}","request":`), req.body, Buffer.from("}")]));
    }, state.delayMs);
  });
  app.post("/v1/throw", () => {
    state.runs++;
    throw new Error("sync throw");
  });
  app.post("/v1/write", (req, res) => {
    state.runs++;
    res.writeHead(202, { "X-Custom": "yes", "Content-Type": "text/plain" });
    res.write("part1,");
    res.end("part2");
  });
  app.post("/v1/auth/login", (req, res) => res.json({ token: "example" }));
  app.get("/v1/charges", (req, res) => res.json({ runs: state.runs }));
  const server = await new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  const port = server.address().port;
  return {
    keys,
    events,
    state,
    port,
    post: (p, { key, org = "acme", body = "{}", headers = {} } = {}) =>
      request(port, {
        method: "POST",
        path: p,
        body,
        headers: {
          ...(key !== undefined ? { "Idempotency-Key": key } : {}),
          ...(org !== null ? { "X-Org-Id": org } : {}),
          ...headers,
        },
      }),
    close: () => new Promise((r) => server.close(r)),
  };
}

function problem(res) {
  assert.equal(res.headers["content-type"], "application/problem+json");
  const p = JSON.parse(res.body.toString());
  assert.deepEqual(Object.keys(p), ["type", "title", "status", "detail"]);
  assert.equal(p.status, res.status);
  return p;
}

test("first request runs and is stored; a retry replays it byte for byte", async () => {
  const app = await startApp();
  try {
    const key = newKey();
    const a = await app.post("/v1/charges", { key, body: '{"amount":1}' });
    assert.equal(a.status, 201);
    assert.equal(a.headers["idempotency-replayed"], undefined);
    const b = await app.post("/v1/charges", { key, body: '{"amount":1}' });
    assert.equal(b.status, 201);
    assert.equal(b.headers["idempotency-replayed"], "true");
    assert.equal(b.headers.location, "/v1/charges/ch_1");
    assert.equal(b.headers["content-type"], a.headers["content-type"]);
    assert.deepEqual(b.headers["set-cookie"], ["a=1", "b=2"]);
    assert.ok(b.body.equals(a.body));
    assert.equal(b.body.toString(), '{"id":"ch_1","request":{"amount":1}}');
    assert.equal(app.state.runs, 1);
    assert.deepEqual(
      app.events.map((e) => e.kind),
      ["run", "stored", "replay"],
    );
    assert.equal(app.events[0].tenant, "acme");
    assert.equal(app.events[0].route, "/v1/charges");
  } finally {
    await app.close();
  }
});

test("writeHead/write/end responses are captured and replayed", async () => {
  const app = await startApp();
  try {
    const key = newKey();
    const a = await app.post("/v1/write", { key });
    assert.equal(a.status, 202);
    assert.equal(a.body.toString(), "part1,part2");
    const b = await app.post("/v1/write", { key });
    assert.equal(b.status, 202);
    assert.equal(b.headers["x-custom"], "yes");
    assert.equal(b.body.toString(), "part1,part2");
    assert.equal(b.headers["idempotency-replayed"], "true");
    assert.equal(app.state.runs, 1);
  } finally {
    await app.close();
  }
});

test("same key, another body or query string: 422 key-reused", async () => {
  const app = await startApp();
  try {
    const key = newKey();
    assert.equal((await app.post("/v1/charges?a=1", { key, body: "x" })).status, 201);
    const body = await app.post("/v1/charges?a=1", { key, body: "y" });
    assert.equal(body.status, 422);
    assert.equal(problem(body).type, "urn:idemkey:key-reused");
    const query = await app.post("/v1/charges?a=2", { key, body: "x" });
    assert.equal(query.status, 422);
    assert.equal(app.state.runs, 1);
  } finally {
    await app.close();
  }
});

test("missing key 400, malformed key 400, missing tenant bypasses or 401", async () => {
  const app = await startApp();
  const strict = await startApp({ requireTenant: true });
  try {
    const missing = await app.post("/v1/charges", {});
    assert.equal(missing.status, 400);
    assert.equal(problem(missing).type, "urn:idemkey:missing-key");
    for (const key of ["x".repeat(257), "has space", ""]) {
      const bad = await app.post("/v1/charges", { key });
      assert.equal(bad.status, 400, JSON.stringify(key));
      const p = problem(bad);
      assert.equal(p.type, "urn:idemkey:malformed-key");
      assert.match(p.detail, /^Idempotency-Key: key /);
    }
    assert.equal(app.state.runs, 0);
    // No X-Org-Id: no tenant, runs unprotected.
    const noTenant = await app.post("/v1/charges", { key: newKey(), org: null, body: "zz" });
    assert.equal(noTenant.status, 201);
    assert.equal(noTenant.body.toString(), '{"id":"ch_1","request":zz}');
    const refused = await strict.post("/v1/charges", { key: newKey(), org: null });
    assert.equal(refused.status, 401);
    assert.equal(problem(refused).type, "urn:idemkey:missing-tenant");
    assert.equal(strict.state.runs, 0);
  } finally {
    await app.close();
    await strict.close();
  }
});

test("excluded routes and GET bypass the middleware", async () => {
  const app = await startApp();
  try {
    assert.equal((await app.post("/v1/auth/login", {})).status, 200);
    const get = await request(app.port, { method: "GET", path: "/v1/charges" });
    assert.equal(get.status, 200);
    assert.deepEqual(
      app.events.map((e) => e.kind),
      ["bypass", "bypass"],
    );
  } finally {
    await app.close();
  }
});

test("a retry while the first runs: 409 in-progress with Retry-After; wait mode replays", async () => {
  const app = await startApp({ lease: "30s" });
  const waiting = await startApp({ lease: "30s", waitForResult: "5s", keys: app.keys });
  try {
    app.state.delayMs = 600;
    const key = newKey();
    const first = app.post("/v1/charges", { key });
    await waitFor(() => app.state.runs === 1, 5000, "the first request to run");
    const busy = await app.post("/v1/charges", { key });
    assert.equal(busy.status, 409);
    assert.equal(problem(busy).type, "urn:idemkey:in-progress");
    const retryAfter = Number(busy.headers["retry-after"]);
    assert.ok(retryAfter >= 1 && retryAfter <= 30, String(retryAfter));
    const waited = await waiting.post("/v1/charges", { key });
    const done = await first;
    assert.equal(done.status, 201);
    assert.equal(waited.status, 201);
    assert.equal(waited.headers["idempotency-replayed"], "true");
    assert.ok(waited.body.equals(done.body));
    assert.equal(app.state.runs + waiting.state.runs, 1);
  } finally {
    await app.close();
    await waiting.close();
  }
});

test("a handler that throws or passes an error to next(): 500, the key released", async () => {
  const app = await startApp();
  try {
    const key = newKey();
    const thrown = await app.post("/v1/throw", { key });
    assert.equal(thrown.status, 500);
    assert.equal((await app.post("/v1/throw", { key })).status, 500);
    assert.equal(app.state.runs, 2);
    const key2 = newKey();
    const failed = await app.post("/v1/charges", { key: key2, headers: { "X-Fail": "next" } });
    assert.equal(failed.status, 500);
    const retry = await app.post("/v1/charges", { key: key2 });
    assert.equal(retry.status, 201);
    assert.ok(app.events.some((e) => e.kind === "released"));
  } finally {
    await app.close();
  }
});

test("not-final statuses (503, 429) are released: a retry runs again", async () => {
  const app = await startApp();
  try {
    const key = newKey();
    app.state.status = 503;
    assert.equal((await app.post("/v1/charges", { key })).status, 503);
    app.state.status = 201;
    const again = await app.post("/v1/charges", { key });
    assert.equal(again.status, 201);
    assert.equal(again.headers["idempotency-replayed"], undefined);
    assert.equal(app.state.runs, 2);
    // Other errors are stored and replayed.
    const key2 = newKey();
    app.state.status = 400;
    assert.equal((await app.post("/v1/charges", { key: key2 })).status, 400);
    app.state.status = 201;
    const replayed = await app.post("/v1/charges", { key: key2 });
    assert.equal(replayed.status, 400);
    assert.equal(replayed.headers["idempotency-replayed"], "true");
  } finally {
    await app.close();
  }
});

test("no answer from the service: 503 unavailable, or fail open; the text stays out", async () => {
  let outage = GrpcStatus.UNAVAILABLE;
  const onCall = () => {
    if (outage !== null) throw new KeyServiceError(outage, "SECRET service text");
  };
  const closed = await startApp({}, { onCall });
  const open = await startApp({ failOpen: true, keys: closed.keys });
  try {
    for (const c of [
      GrpcStatus.UNAVAILABLE,
      GrpcStatus.DEADLINE_EXCEEDED,
      GrpcStatus.CANCELLED,
      GrpcStatus.UNKNOWN,
      GrpcStatus.INTERNAL,
      GrpcStatus.UNIMPLEMENTED,
      GrpcStatus.DATA_LOSS,
    ]) {
      outage = c;
      const r = await closed.post("/v1/charges", { key: newKey() });
      assert.equal(r.status, 503, GrpcStatus[c]);
      const p = problem(r);
      assert.equal(p.type, "urn:idemkey:unavailable");
      assert.doesNotMatch(r.body.toString(), /SECRET/);
      assert.equal((await open.post("/v1/charges", { key: newKey() })).status, 201, GrpcStatus[c]);
    }
    assert.equal(closed.state.runs, 0);
    assert.equal(open.state.runs, 7);
    assert.equal(closed.events.filter((e) => e.kind === "unavailable").length, 7);
    assert.match(closed.events[0].serviceError.details, /SECRET/);
    // The service answered: RESOURCE_EXHAUSTED is 503 even failing open,
    // other verdicts 500.
    outage = GrpcStatus.RESOURCE_EXHAUSTED;
    const full = await open.post("/v1/charges", { key: newKey() });
    assert.equal(full.status, 503);
    assert.equal(problem(full).type, "urn:idemkey:unavailable");
    for (const c of [GrpcStatus.PERMISSION_DENIED, GrpcStatus.UNAUTHENTICATED, GrpcStatus.INVALID_ARGUMENT, GrpcStatus.NOT_FOUND]) {
      outage = c;
      const r = await open.post("/v1/charges", { key: newKey() });
      assert.equal(r.status, 500, GrpcStatus[c]);
      assert.equal(problem(r).type, "urn:idemkey:internal");
      assert.doesNotMatch(r.body.toString(), /SECRET/);
    }
    assert.equal(open.state.runs, 7);
  } finally {
    await closed.close();
    await open.close();
  }
});

test("a response too large to store: sent whole, replayed without its body", async () => {
  const app = await startApp({}, { maxResponseBytes: 4096 });
  try {
    app.state.bigBody = 10000;
    const key = newKey();
    const a = await app.post("/v1/charges", { key });
    assert.equal(a.status, 201);
    assert.equal(a.body.length, 10000);
    const b = await app.post("/v1/charges", { key });
    assert.equal(b.status, 201);
    assert.equal(b.body.length, 0);
    assert.equal(b.headers["idempotency-replayed"], "true");
    assert.equal(b.headers["idempotency-body-omitted"], "true");
    assert.equal(b.headers.location, "/v1/charges/ch_1");
    assert.equal(app.state.runs, 1);
    assert.ok(app.events.some((e) => e.kind === "body_omitted"));
  } finally {
    await app.close();
  }
});

test("heartbeats keep the lease of a handler that outlives it", async () => {
  const app = await startApp({ lease: "1s" });
  try {
    app.state.delayMs = 2500;
    const key = newKey();
    const first = app.post("/v1/charges", { key });
    await waitFor(() => app.state.runs === 1, 5000, "the first request to run");
    // Past the first lease's end, another attempt still finds it held.
    const start = Date.now();
    while (Date.now() - start < 1800) {
      const r = await app.post("/v1/charges", { key });
      assert.equal(r.status, 409);
      await new Promise((res) => setTimeout(res, 200));
    }
    assert.equal((await first).status, 201);
    assert.equal(app.state.runs, 1);
  } finally {
    await app.close();
  }
});

test("X-Org-Id is mapped through tenantNameFor", async () => {
  const app = await startApp();
  try {
    const key = newKey();
    assert.equal((await app.post("/v1/charges", { key, org: "Acme Corp" })).status, 201);
    assert.equal(app.events[0].tenant, "acme-corp--a73cb4563ee2e72c");
    const r = await app.post("/v1/charges", { key, org: "Acme Corp" });
    assert.equal(r.headers["idempotency-replayed"], "true");
    // Another tenant: another record.
    assert.equal((await app.post("/v1/charges", { key, org: "acme" })).headers["idempotency-replayed"], undefined);
  } finally {
    await app.close();
  }
});

test("storeAfterResponse: the response arrives while its Complete waits; a retry then replays", async () => {
  /** Completes wait until open() is called. */
  class GatedCompletes extends InMemoryKeyService {
    constructor() {
      super();
      this.entered = 0;
      this.gate = new Promise((r) => (this.open = r));
    }
    async complete(req) {
      this.entered++;
      await this.gate;
      return super.complete(req);
    }
  }
  const keys = new GatedCompletes();
  const app = await startApp({ keys, storeAfterResponse: true });
  try {
    const key = newKey();
    const sent = app.post("/v1/charges", { key, body: '{"amount":1}' });
    let timer;
    const first = await Promise.race([sent, new Promise((r) => (timer = setTimeout(() => r(null), 10000)))]);
    clearTimeout(timer);
    if (first === null) {
      keys.open();
      await sent;
      assert.fail("no response while the Complete waited: it was stored first");
    }
    assert.equal(first.status, 201);
    assert.ok(first.body.toString().includes('"amount":1'));
    assert.equal(keys.entered, 1, "the response came while its Complete was waiting");
    const early = await app.post("/v1/charges", { key, body: '{"amount":1}' });
    assert.equal(early.status, 409);
    keys.open();
    await waitFor(async () => (await keys.lookup("acme", key)).state === "COMPLETED", 5000, "the store");
    const replay = await app.post("/v1/charges", { key, body: '{"amount":1}' });
    assert.equal(replay.headers["idempotency-replayed"], "true");
    assert.ok(replay.body.equals(first.body));
    assert.equal(app.state.runs, 1);
  } finally {
    keys.open();
    await app.close();
  }
});
