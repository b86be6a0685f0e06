// key_stream.h — KeyService/Stream: many calls over one long-lived stream,
// each answered as soon as its result is durable.
//
//   grpc::ServerBidiReactor<StreamRequest, StreamResponse>* Stream(
//       grpc::CallbackServerContext* ctx) override {
//     return new KeyStream(store_, pool_, authorize, may_create, metrics_);
//   }
//
// Each op read is run like a Batch op (api::RunOp: on gRPC's reading thread
// unless it needs the disk, then on the pool), and its result waits for
// KeyStore::WhenDurable: one wait for the ops of a message that ran on the
// reading thread, one for each op that went to the pool. Durable results
// collect in an outbox; one write is in flight at a time (gRPC allows no more),
// and each write takes the whole outbox, so the results of one WAL sync leave
// in one message. Reading goes on while ops run: the client's next ops are not
// held back by the disk.
//
// The stream ends OK once the client half-closed and every op read is
// answered. Drain (idemkeyd stopping) ends it UNAVAILABLE as soon as the ops
// read so far are answered, so that a stream does not hold a stopping
// idemkeyd until its --drain_timeout; the client resends elsewhere (ops in
// a message that gRPC hands over after the end are not applied). A write
// that fails (the client went away) drops every later result; ops already
// applied stay applied, as with a unary call whose answer was lost.
//
// Lifetime: the reactor deletes itself after OnDone, which follows Finish
// (Finish comes only once no op is in flight and no more are read), and
// once every Hold is released.
// Thread-safe: gRPC's callbacks and the ops' completions come from any
// thread; all state is under mu_.

#ifndef IDEMKEY_SERVER_SERVICE_KEY_STREAM_H_
#define IDEMKEY_SERVER_SERVICE_KEY_STREAM_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "idemkey/v1/idemkey.grpc.pb.h"
#include "server/metrics/call_metrics.h"
#include "server/store/key_store.h"
#include "server/util/thread_pool.h"

namespace idemkey::service {

class KeyStream final
    : public grpc::ServerBidiReactor<idemkey::v1::StreamRequest,
                                     idemkey::v1::StreamResponse> {
 public:
  // May the caller touch this tenant's records? OK or the refusal.
  using Authorize = std::function<absl::Status(absl::string_view tenant)>;
  // May the caller's Reserve create this unknown tenant?
  using MayCreate = std::function<bool(absl::string_view tenant)>;

  // Told, at OnDone, that gRPC is done with the stream.
  using OnEnd = std::function<void(KeyStream*)>;

  // None of the pointers is owned; store, pool and metrics (may be null)
  // must outlive the stream.
  KeyStream(store::KeyStore* store, util::ThreadPool* pool, Authorize authorize,
            MayCreate may_create, metrics::CallMetrics* metrics, OnEnd on_end);

  // Reads the first ops; called once, before Stream() returns the reactor
  // to gRPC (after the stream is registered where `on_end` finds it).
  void StartReading();
  // Keeps this alive until Release, past OnDone: for a caller that found it
  // in a registry that `on_end` removes it from, under the registry's lock.
  void Hold();
  void Release();
  // Ends the stream UNAVAILABLE once the ops read so far are answered.
  void Drain();

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

 private:
  ~KeyStream() override = default;

  // An op whose store work has run: its status (OK, or the error that
  // goes into its result) and result, and which call it was (for metrics).
  struct Ran {
    absl::Status status;
    idemkey::v1::StreamResult result;
    idemkey::v1::BatchOp::CallCase call = idemkey::v1::BatchOp::CALL_NOT_SET;
  };
  // Runs `op` (read at `read_at`). When the store answers at once (no
  // disk wait), the op joins `ran`, answered with the rest of its message
  // after one WhenDurable; otherwise it runs on the pool and is answered
  // by itself.
  void Start(idemkey::v1::StreamOp op, absl::Time read_at,
             std::vector<Ran>* ran);
  // The op's store work, refused past `deadline`.
  absl::Status Apply(const idemkey::v1::StreamOp& op, absl::Time deadline,
                     idemkey::v1::StreamResult* result,
                     const store::CallOptions& options);
  // Delivers `ran` once everything it wrote or read is durable.
  void DeliverWhenDurable(std::vector<Ran> ran, absl::Time read_at);
  // Counts an id in flight; false (and the op answered INVALID_ARGUMENT)
  // when an op in flight has it already.
  bool Admit(uint64_t id);
  // The ops' results are final: counted, into the outbox, and out if no
  // write is in flight.
  void Deliver(std::vector<Ran> ran, absl::Time read_at);
  // What to do once mu_ is released: gRPC's StartWrite and Finish are
  // called without it, as their reactions may run on another thread before
  // they return.
  struct Step {
    enum Action { kNothing, kWrite, kFinish } action = kNothing;
    grpc::Status status;  // with kFinish
  };
  // Decides, under mu_, between writing the outbox (taking it into
  // writing_), finishing the stream (nothing left to answer), or nothing.
  Step NextStepLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Take(const Step& step);

  store::KeyStore* const store_;
  util::ThreadPool* const pool_;
  const Authorize authorize_;
  const MayCreate may_create_;
  metrics::CallMetrics* const metrics_;
  const OnEnd on_end_;

  idemkey::v1::StreamRequest read_;  // filled by gRPC during a read
  absl::Mutex mu_;
  // Ops read and not yet answered (or dropped): their ids, which a new op
  // may not reuse, and their count, which keeps the reactor alive.
  absl::flat_hash_set<uint64_t> open_ids_ ABSL_GUARDED_BY(mu_);
  int ops_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  idemkey::v1::StreamResponse outbox_ ABSL_GUARDED_BY(mu_);
  // The message of the write in flight; swapped in under mu_ while no
  // write is in flight, then read by gRPC alone until OnWriteDone.
  idemkey::v1::StreamResponse writing_;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // a write failed
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  // Reads whose ops are being started, or whose next read is not started
  // yet (the first read counts from the constructor to StartReading): while
  // any, the stream may not finish, as a StartRead after Finish would touch
  // a deleted reactor.
  int admitting_ ABSL_GUARDED_BY(mu_) = 1;
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // OnDone ran
  int holds_ ABSL_GUARDED_BY(mu_) = 0;
  // The stream's status once everything is answered: OK, or the client's
  // error that stopped the reading.
  grpc::Status end_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace idemkey::service

#endif  // IDEMKEY_SERVER_SERVICE_KEY_STREAM_H_
