// batch_run.h — the ops of one KeyService/Batch call, run so that a batch
// costs about its slowest record, not the sum of its ops.
//
//   RunBatch(store, pool, *request, response, authorize, may_create,
//            [reactor, store](absl::Status s) {
//              // every op has its result in *response (or s is the
//              // batch's own error): answer once durable
//            });
//
// Each op is authorized and applied exactly as its own call would be
// (api::RunOp), and its error goes into its result. The ops first run on the
// calling (gRPC) thread, where they may not wait for I/O (store_call.h). An
// op the store refuses there (WouldBlockError: a record outside RocksDB's
// caches; every op on PostgreSQL, whose every call is a network round trip)
// goes to the pool together with every later op on the same record. The
// pool runs one task per record: the ops of one record in the batch's
// order, those of different records at once. So a batch of 100 Reserves on
// PostgreSQL takes a few round trips, not 200 in a row.
//
// Order: ops on one (tenant, key) run in the batch's order; ops on
// different records are independent (the proto says so) and may run in any
// order, as the same calls from concurrent clients would. Fencing tokens of
// different records in one batch may therefore not follow op order.

#ifndef IDEMKEY_SERVER_SERVICE_BATCH_RUN_H_
#define IDEMKEY_SERVER_SERVICE_BATCH_RUN_H_

#include <functional>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "idemkey/v1/idemkey.pb.h"
#include "server/store/key_store.h"
#include "server/util/thread_pool.h"

namespace idemkey::service {

struct BatchCallbacks {
  // May the caller touch this tenant's records? OK or the refusal.
  std::function<absl::Status(absl::string_view tenant)> authorize;
  // May the caller's Reserve create this unknown tenant?
  std::function<bool(absl::string_view tenant)> may_create;
  // Runs once, on some thread, when every op of the batch has its result in
  // the response; with the batch's own error (more than api::kMaxBatchOps
  // ops) instead, and no results, when it was refused whole.
  absl::AnyInvocable<void(absl::Status) &&> done;
};

// Runs `request`'s ops into `response` (empty on entry). `request` and
// `response` must stay valid, and untouched by the caller, until `done`
// runs; `store` and `pool` must outlive it. An op that the pool no longer
// takes (idemkeyd stopping) is answered UNAVAILABLE. `authorize` and
// `may_create` may be called from several pool threads at once.
void RunBatch(store::KeyStore* store, util::ThreadPool* pool,
              const idemkey::v1::BatchRequest& request,
              idemkey::v1::BatchResponse* response, BatchCallbacks callbacks);

}  // namespace idemkey::service

#endif  // IDEMKEY_SERVER_SERVICE_BATCH_RUN_H_
