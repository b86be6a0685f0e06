#include "server/store/postgres/connection_pool.h"

#include <utility>

namespace idemkey::store::postgres {

ConnectionPool::Lease::~Lease() {
  if (connection_ != nullptr) pool_->GiveBack(std::move(connection_));
}

ConnectionPool::ConnectionPool(std::string dsn, PoolOptions options)
    : dsn_(std::move(dsn)), options_(options) {}

absl::StatusOr<ConnectionPool::Lease> ConnectionPool::Borrow() {
  {
    sync::MutexLock lock(&mu_);
    while (idle_.empty() && open_ >= options_.size) returned_.Wait(&mu_);
    if (!idle_.empty()) {
      std::unique_ptr<Connection> c = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(c));
    }
    ++open_;  // this caller's slot, while it connects
  }
  absl::StatusOr<std::unique_ptr<Connection>> opened =
      Connection::Open(dsn_, options_.statement_timeout);
  if (!opened.ok()) {
    sync::MutexLock lock(&mu_);
    --open_;
    returned_.Signal();
    return opened.status();
  }
  return Lease(this, *std::move(opened));
}

void ConnectionPool::DropIdle() {
  std::vector<std::unique_ptr<Connection>> dropped;
  {
    sync::MutexLock lock(&mu_);
    dropped.swap(idle_);
    open_ -= dropped.size();
    returned_.SignalAll();
  }
}  // closed here, outside the lock

void ConnectionPool::GiveBack(std::unique_ptr<Connection> c) {
  const bool broken = c->broken();
  if (broken) c.reset();  // closed outside the lock
  sync::MutexLock lock(&mu_);
  if (broken) {
    --open_;
  } else {
    idle_.push_back(std::move(c));
  }
  returned_.Signal();
}

}  // namespace idemkey::store::postgres
