// wal_syncer.h — one fsync for many writes: the group commit behind
// Backend::WhenDurable of RocksDbBackend.
//
// Writers write without syncing, then call WhenSynced. One thread notes the
// newest sequence number, syncs the log once, and answers every waiter that
// sequence number covers; writes arriving during a sync share the next one.
// Nobody waits for a sync while holding a lock, and the threads answering
// RPCs never block on a disk.
//
//   WalSyncer syncer({
//       .latest_sequence = [db] { return db->GetLatestSequenceNumber(); },
//       .sync = [db] { return ToAbsl(db->SyncWAL()); },
//   });
//   db->Put(unsynced, ...);
//   syncer.WhenSynced([](absl::Status s) { /* acknowledge the write */ });
//
// Invariant: a callback runs only after a sync that started after its
// WhenSynced read the latest sequence number, so everything written (or
// read) before WhenSynced was called is on disk when it runs with OK.
//
// Thread-safe. The hooks are called from the syncer thread and from
// WhenSynced's callers, never under the syncer's lock.

#ifndef IDEMKEY_SERVER_STORE_ROCKSDB_WAL_SYNCER_H_
#define IDEMKEY_SERVER_STORE_ROCKSDB_WAL_SYNCER_H_

#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "idemkey/sync/mutex.h"

namespace idemkey::store {

class WalSyncer {
 public:
  struct Hooks {
    // The sequence number of the newest write whose log record has been
    // written (not necessarily synced). Never decreases.
    std::function<uint64_t()> latest_sequence;
    // Syncs every log record written so far.
    std::function<absl::Status()> sync;
  };
  // Receives OK, or the error of the sync that should have covered it.
  using Done = absl::AnyInvocable<void(absl::Status) &&>;

  explicit WalSyncer(Hooks hooks);
  // Stop()s.
  ~WalSyncer();
  WalSyncer(const WalSyncer&) = delete;
  WalSyncer& operator=(const WalSyncer&) = delete;

  // Runs `done` once everything written before this call is synced: at once
  // on the calling thread when it already is, else later on the syncer
  // thread (so `done` must not block for long: every waiter of the same sync
  // runs after it).
  void WhenSynced(Done done);

  // Answers every waiter (syncing once more if any is left) and ends the
  // thread. Later WhenSynced calls sync on the calling thread.
  void Stop();

  // Syncs done by the thread so far; for tests and metrics.
  uint64_t syncs() const;

 private:
  struct Waiter {
    uint64_t sequence;
    Done done;
  };

  void Run();

  const Hooks hooks_;
  mutable sync::Mutex mu_;
  sync::CondVar wake_;
  std::vector<Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  uint64_t synced_ ABSL_GUARDED_BY(mu_) = 0;  // covered by a finished sync
  uint64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts after the members above
};

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_ROCKSDB_WAL_SYNCER_H_
