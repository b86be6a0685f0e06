// connection_pool.h — at most N libpq connections, shared by store threads.
//
// A caller borrows a connection for one store call (a transaction never
// spans two borrows) and gives it back; a connection that broke (the server
// went away, a failover) is dropped on return, and the next borrower opens a
// new one, which a multi-host DSN with target_session_attrs=read-write
// points at the new primary. Connections are opened lazily, outside the
// pool's lock, so a slow connect delays only its own caller.
//
//   ConnectionPool pool(dsn, {.size = 16});
//   absl::StatusOr<ConnectionPool::Lease> c = pool.Borrow();
//   if (!c.ok()) return c.status();   // UNAVAILABLE: cannot connect
//   (*c)->Run(pipeline);              // returned when the Lease dies
//
// Thread-safe. The pool must outlive its Leases.

#ifndef IDEMKEY_SERVER_STORE_POSTGRES_CONNECTION_POOL_H_
#define IDEMKEY_SERVER_STORE_POSTGRES_CONNECTION_POOL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "idemkey/sync/mutex.h"
#include "server/store/postgres/connection.h"

namespace idemkey::store::postgres {

struct PoolOptions {
  size_t size = 16;  // connections at most
  // Session statement_timeout and lock_timeout (Connection::Open).
  absl::Duration statement_timeout = absl::Seconds(5);
};

class ConnectionPool {
 public:
  // Gives its connection back (or drops it when broken) on destruction.
  class Lease {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> c)
        : pool_(pool), connection_(std::move(c)) {}
    ~Lease();
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;

    Connection* operator->() const { return connection_.get(); }
    Connection& operator*() const { return *connection_; }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<Connection> connection_;
  };

  ConnectionPool(std::string dsn, PoolOptions options);

  // Waits for a free connection, or opens one while fewer than `size` exist.
  // UNAVAILABLE when a new connection cannot be opened.
  absl::StatusOr<Lease> Borrow();

  // Closes every idle connection: after one was found lost, the others
  // (to the same, probably dead, primary) most likely are too, and each
  // would fail its next borrower once.
  void DropIdle();

 private:
  void GiveBack(std::unique_ptr<Connection> c);

  const std::string dsn_;
  const PoolOptions options_;
  sync::Mutex mu_;
  sync::CondVar returned_;
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);
  size_t open_ ABSL_GUARDED_BY(mu_) = 0;  // idle or lent, or being opened
};

}  // namespace idemkey::store::postgres

#endif  // IDEMKEY_SERVER_STORE_POSTGRES_CONNECTION_POOL_H_
