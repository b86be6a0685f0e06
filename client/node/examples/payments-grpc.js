#!/usr/bin/env node
// payments-grpc — a small gRPC payments API protected by idemkey (the
// Node.js rewrite of client/cpp/examples/payments_grpc.cc; its contract is
// tests/conformance/README.md, "payments-grpc"). The API is
// proto/idemkey/examples/payments.proto.
//
//   idemkeyd --listen=127.0.0.1:50051 &
//   node client/node/examples/payments-grpc.js --listen_port=50052 --idemkey=127.0.0.1:50051 &
//   grpcurl -plaintext -import-path proto -proto idemkey/examples/payments.proto
//     -H 'x-org-id: acme' -H 'idempotency-key: 5f0c...'
//     -d '{"amount": 1000, "currency": "EUR"}'
//     127.0.0.1:50052 idemkey.examples.Payments/CreateCharge   (one line)
//
// Payments/CreateCharge creates a charge ch_N (N counts this process's
// charges), with initial metadata x-charge-id: ch_N; a retry with the same
// idempotency-key metadata and request gets it back, replayed. The tenant is
// the x-org-id metadata; calls without it are not protected. A non-positive
// amount answers INVALID_ARGUMENT, stored and replayed like any answer. A
// call with metadata x-fail: throw throws after --charge_delay, without
// charging: the middleware releases the key and the call ends INTERNAL.
// SIGTERM or SIGINT stops it after the calls in flight.
// Needs the package built (npm run build).

"use strict";

const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const { GrpcIdempotency, findProtoDir } = require(path.join(__dirname, "..", "dist"));
const { setUpExample } = require("./example-flags");

// The middleware fingerprints the request and stores the reply as protobufjs
// serializes them, and those bytes must be the ones C++, Go and Python
// write, or apps of different languages would not replay each other's
// records.
// - longs: String keeps every int64 exact (Number would round past 2^53).
// - defaults stays off: protobufjs writes every field the object has, so a
//   request filled with defaults would serialize fields the client never
//   sent (and fingerprint differently).
const LOADER_OPTIONS = { longs: String, includeDirs: [findProtoDir()] };
const Payments = grpc.loadPackageDefinition(
  protoLoader.loadSync(path.join("idemkey", "examples", "payments.proto"), LOADER_OPTIONS),
).idemkey.examples.Payments;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function main() {
  const ex = setUpExample({ program: "payments-grpc", protocol: "gRPC", listenPort: 50052 });
  const { flags, keys } = ex;

  // One client (one channel) per process, shared by every call. The
  // adapter's defaults: every wrapped method covered, UNAVAILABLE and
  // RESOURCE_EXHAUSTED released rather than stored, the tenant the x-org-id
  // metadata mapped by tenantNameFor.
  const idempotency = new GrpcIdempotency(keys, { requireKey: true, ...ex.middlewareOptions });

  let charges = 0;
  // In the order of payments_grpc.cc: the amount is checked before the delay.
  async function CreateCharge(call, callback) {
    const fail = call.metadata.get("x-fail")[0] === "throw";
    const { amount = "0", currency, description } = call.request;
    if (BigInt(amount) <= 0n) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: `amount must be positive, not ${amount}` });
      return;
    }
    await sleep(flags.charge_delay);
    // A rejected promise: the adapter releases the key and answers INTERNAL.
    if (fail) throw new Error("the charge failed (x-fail: throw)");
    const id = `ch_${++charges}`;
    // Sent through call.sendMetadata, the adapter's reply metadata: stored
    // and replayed with the answer.
    const metadata = new grpc.Metadata();
    metadata.set("x-charge-id", id);
    call.sendMetadata(metadata);
    // proto3 writes no field at its default and protobufjs every field it is
    // given: an empty currency or description (a client may send one) is
    // left out.
    callback(null, { id, amount, ...(currency ? { currency } : {}), ...(description ? { description } : {}) });
  }

  const server = new grpc.Server();
  server.addService(Payments.service, idempotency.wrapService(Payments.service, { CreateCharge }));
  server.bindAsync(`127.0.0.1:${flags.listen_port}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) ex.fail(`cannot listen on 127.0.0.1:${flags.listen_port}: ${err.message}`);
    ex.listening(port);
  });
  // tryShutdown refuses new calls and waits for the ones in flight.
  ex.onStop((done) => server.tryShutdown(done));
}

main();
