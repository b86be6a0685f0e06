"use strict";
// The Client over in-process gRPC servers standing in for idemkeyd
// replicas: which answers it retries, and how it spreads calls over several.
const test = require("node:test");
const assert = require("node:assert/strict");
const grpc = require("@grpc/grpc-js");
const { Client, GrpcStatus, loadIdemkeyV1 } = require("..");
const { code, waitFor } = require("./helpers/env");

const { KeyService } = loadIdemkeyV1();

/**
 * A KeyService answering Ping: first with the codes of `fail`, one per
 * call, then OK; the first `hold` calls it never answers. `calls` counts
 * them; `arrived` resolves at the first.
 */
async function startReplica({ fail = [], hold = 0 } = {}) {
  let arrived;
  const replica = { calls: 0, server: new grpc.Server(), arrived: new Promise((r) => (arrived = r)) };
  replica.server.addService(KeyService.service, {
    Ping(_call, callback) {
      const n = replica.calls++;
      arrived();
      if (n < hold) return;
      if (fail[n] !== undefined) return callback({ code: fail[n], details: "injected" });
      callback(null, {});
    },
  });
  replica.port = await new Promise((resolve, reject) =>
    replica.server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
  replica.stop = () => replica.server.forceShutdown();
  return replica;
}

function client(address, over = {}) {
  return new Client({ address, maxAttempts: 4, initialBackoffMs: 1, maxBackoffMs: 4, ...over });
}

test.describe("Client retries", () => {
  test("CANCELLED from the server (a stopping idemkeyd): retried like UNAVAILABLE", async (t) => {
    const r = await startReplica({ fail: [GrpcStatus.CANCELLED, GrpcStatus.CANCELLED] });
    t.after(r.stop);
    const c = client(`127.0.0.1:${r.port}`);
    t.after(() => c.close());
    await c.ping();
    assert.equal(r.calls, 3);
  });

  test("CANCELLED every time: given up after maxAttempts", async (t) => {
    const r = await startReplica({ fail: Array(10).fill(GrpcStatus.CANCELLED) });
    t.after(r.stop);
    const c = client(`127.0.0.1:${r.port}`);
    t.after(() => c.close());
    assert.equal(await code(c.ping()), GrpcStatus.CANCELLED);
    assert.equal(r.calls, 4);
  });

  test("a call cancelled on this side (an app's interceptor) is not retried", async (t) => {
    // The first call is held by the server and cancelled by the app once
    // the server has it; a retry would be answered OK.
    const r = await startReplica({ hold: 1 });
    t.after(r.stop);
    let calls = 0;
    const cancelTheFirst = (options, nextCall) => {
      const call = new grpc.InterceptingCall(nextCall(options));
      if (calls++ === 0) r.arrived.then(() => call.cancelWithStatus(GrpcStatus.CANCELLED, "cancelled by the app"));
      return call;
    };
    const c = client(`127.0.0.1:${r.port}`, { channelOptions: { interceptors: [cancelTheFirst] } });
    t.after(() => c.close());
    assert.equal(await code(c.ping()), GrpcStatus.CANCELLED);
    assert.equal(r.calls, 1);
  });
});

test("a target naming two replicas: both take calls in turn; one gone, the other takes them all", async (t) => {
  const one = await startReplica();
  const two = await startReplica();
  t.after(one.stop);
  t.after(two.stop);
  const c = client(`ipv4:127.0.0.1:${one.port},127.0.0.1:${two.port}`);
  t.after(() => c.close());
  // Until both connections are up, the ones that are take every call.
  await waitFor(
    async () => {
      await c.ping();
      return one.calls > 0 && two.calls > 0;
    },
    10000,
    "both replicas to take a call",
  );
  let before = [one.calls, two.calls];
  for (let i = 0; i < 10; i++) await c.ping();
  assert.deepEqual([one.calls - before[0], two.calls - before[1]], [5, 5]);
  two.stop();
  before = [one.calls, two.calls];
  for (let i = 0; i < 10; i++) await c.ping();
  assert.deepEqual([one.calls - before[0], two.calls - before[1]], [10, 0]);
});
