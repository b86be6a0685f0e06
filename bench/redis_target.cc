// Redis as a Target: what a team would do with Redis instead of idemkey.
//
//   pairs  SET <key> <32-byte fingerprint> NX PX <ttl ms>, which must answer
//          OK (the key was free: this attempt owns it), then
//          SET <key> <response> PX <ttl ms> to store the response;
//   ping   PING, the baseline.
//
// Each run opens one connection per operation in flight, each with exactly
// one command outstanding, all served by one thread with epoll. hiredis only
// formats the commands and parses the replies: its contexts are
// non-blocking and this file does the waiting.

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "bench/closed_loop.h"
#include "bench/target.h"

namespace idemkey::bench {
namespace {

// Redis keeps records this long when --ttl_seconds leaves it to the server:
// idemkeyd's default.
constexpr int64_t kDefaultTtlSeconds = 24 * 3600;
constexpr int kConnectTimeoutMs = 5000;

// `n` non-blocking hiredis connections, served by one thread with epoll.
// Replies, and the failures of connections, go to an OnReply on that thread.
class RedisLoop {
 public:
  // `reply` is null when the connection failed (`error` says why); it is
  // freed once the callback returns.
  using OnReply = std::function<void(size_t conn, redisReply* reply,
                                     absl::string_view error)>;

  // Opens the connections and starts the thread; null, with *error set, when
  // a connection fails.
  static std::unique_ptr<RedisLoop> Connect(const std::string& host, int port,
                                            size_t n, OnReply on_reply,
                                            std::string* error) {
    std::unique_ptr<RedisLoop> loop(new RedisLoop(n, std::move(on_reply)));
    if (loop->epoll_fd_ < 0 || loop->wake_fd_ < 0) {
      *error = absl::StrCat("epoll/eventfd: ", std::strerror(errno));
      return nullptr;
    }
    loop->Watch(loop->wake_fd_, EPOLL_CTL_ADD, EPOLLIN, kWake);
    for (size_t i = 0; i < n; ++i) {
      Conn& conn = loop->conns_[i];
      conn.ctx = redisConnectNonBlock(host.c_str(), port);
      if (conn.ctx == nullptr) {
        *error = "redisConnectNonBlock: out of memory";
        return nullptr;
      }
      if (conn.ctx->err != 0 || !WaitConnected(conn.ctx)) {
        *error = absl::StrCat("cannot connect to Redis at ", host, ":", port,
                              ": ", conn.ctx->errstr);
        return nullptr;
      }
      loop->Watch(conn.ctx->fd, EPOLL_CTL_ADD, EPOLLIN, i);
      conn.alive = true;
    }
    loop->thread_ = std::thread([l = loop.get()] { l->Loop(); });
    return loop;
  }

  ~RedisLoop() {
    if (thread_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        stopping_ = true;
      }
      Wake();
      thread_.join();
    }
    for (Conn& conn : conns_) {
      if (conn.ctx != nullptr) redisFree(conn.ctx);
    }
    if (wake_fd_ >= 0) close(wake_fd_);
    if (epoll_fd_ >= 0) close(epoll_fd_);
  }

  // Runs `task` on the loop thread: at once when called from it, otherwise
  // as soon as the thread wakes up.
  void RunInLoop(std::function<void()> task) {
    if (std::this_thread::get_id() == thread_.get_id()) return task();
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(task));
    }
    Wake();
  }

  // Loop thread only: sends one command (its arguments, binary-safe) on
  // `conn`, writing what the socket takes now and the rest when it becomes
  // writable. False, with the connection closed, when that fails.
  bool Send(size_t conn, std::initializer_list<absl::string_view> args) {
    constexpr size_t kMaxArgs = 8;
    Conn& c = conns_[conn];
    if (!c.alive || args.size() > kMaxArgs) return false;
    const char* argv[kMaxArgs];
    size_t lengths[kMaxArgs];
    size_t i = 0;
    for (absl::string_view arg : args) {
      argv[i] = arg.data();
      lengths[i++] = arg.size();
    }
    if (redisAppendCommandArgv(c.ctx, static_cast<int>(i), argv, lengths) !=
            REDIS_OK ||
        !Flush(conn)) {
      Close(conn);
      return false;
    }
    return true;
  }

  // Whether `conn` still works; from any thread.
  bool alive(size_t conn) const { return conns_[conn].alive; }

  // Why `conn` failed; loop thread only.
  std::string error(size_t conn) const { return conns_[conn].ctx->errstr; }

 private:
  struct Conn {
    redisContext* ctx = nullptr;
    bool want_write = false;  // EPOLLOUT is watched; loop thread only
    std::atomic<bool> alive{false};
  };

  // epoll data of the wake-up eventfd; connections are their index.
  static constexpr uint64_t kWake = ~uint64_t{0};

  RedisLoop(size_t n, OnReply on_reply)
      : on_reply_(std::move(on_reply)),
        conns_(n),
        epoll_fd_(epoll_create1(EPOLL_CLOEXEC)),
        wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

  // A non-blocking connect returns before the TCP handshake ends; wait for it
  // so that a refused connection is an error of Connect, not of a run.
  static bool WaitConnected(redisContext* ctx) {
    pollfd pfd{ctx->fd, POLLOUT, 0};
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    if (poll(&pfd, 1, kConnectTimeoutMs) != 1 ||
        getsockopt(ctx->fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0 ||
        so_error != 0) {
      std::snprintf(
          ctx->errstr, sizeof(ctx->errstr), "%s",
          so_error != 0 ? std::strerror(so_error) : "no connection within 5 s");
      return false;
    }
    return true;
  }

  void Watch(int fd, int op, uint32_t events, uint64_t data) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = data;
    epoll_ctl(epoll_fd_, op, fd, &ev);
  }

  void Wake() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
  }

  void Loop() {
    constexpr int kMaxEvents = 64;
    epoll_event events[kMaxEvents];
    for (;;) {
      const int n = epoll_wait(epoll_fd_, events, kMaxEvents, -1);
      for (int i = 0; i < n; ++i) {
        if (events[i].data.u64 == kWake) {
          if (!RunTasks()) return;
          continue;
        }
        const size_t conn = events[i].data.u64;
        if (!conns_[conn].alive) continue;
        if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) Read(conn);
        if (conns_[conn].alive && (events[i].events & EPOLLOUT) &&
            !Flush(conn)) {
          Fail(conn);
        }
      }
    }
  }

  // Runs the queued tasks; false once the loop must stop.
  bool RunTasks() {
    uint64_t count;
    [[maybe_unused]] ssize_t n = read(wake_fd_, &count, sizeof(count));
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return false;
      tasks.swap(tasks_);
    }
    for (auto& task : tasks) task();
    return true;
  }

  // Reads what arrived and hands each complete reply on. In a non-blocking
  // context redisGetReply only parses what redisBufferRead read: it answers
  // REDIS_OK with a null reply when no reply is complete yet.
  void Read(size_t conn) {
    redisContext* ctx = conns_[conn].ctx;
    if (redisBufferRead(ctx) != REDIS_OK) return Fail(conn);
    while (conns_[conn].alive) {
      void* reply = nullptr;
      if (redisGetReply(ctx, &reply) != REDIS_OK) return Fail(conn);
      if (reply == nullptr) return;
      on_reply_(conn, static_cast<redisReply*>(reply), "");
      freeReplyObject(reply);
    }
  }

  // Writes the output buffer; watches writability while some is left.
  bool Flush(size_t conn) {
    Conn& c = conns_[conn];
    int done = 0;
    if (redisBufferWrite(c.ctx, &done) != REDIS_OK) return false;
    if (c.want_write == (done == 0)) return true;
    c.want_write = done == 0;
    Watch(c.ctx->fd, EPOLL_CTL_MOD, c.want_write ? EPOLLIN | EPOLLOUT : EPOLLIN,
          conn);
    return true;
  }

  // Stops using `conn` (its context lives on until the loop is destroyed,
  // since a caller up the stack may still hold it).
  void Close(size_t conn) {
    conns_[conn].alive = false;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conns_[conn].ctx->fd, nullptr);
  }

  void Fail(size_t conn) {
    Close(conn);
    on_reply_(conn, nullptr, conns_[conn].ctx->errstr);
  }

  const OnReply on_reply_;
  std::vector<Conn> conns_;
  const int epoll_fd_;
  const int wake_fd_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;  // guarded by mu_
  bool stopping_ = false;                     // guarded by mu_
};

// What every run shares.
struct Fixture {
  std::string host;
  int port = 0;
  std::vector<std::string> tenants;
  std::string run_id;
  std::string fingerprint;
  std::string response;
  std::string ttl_ms;  // PX argument
};

bool IsStatus(const redisReply* reply, absl::string_view status) {
  return reply->type == REDIS_REPLY_STATUS &&
         absl::string_view(reply->str, reply->len) == status;
}

std::string Describe(const redisReply* reply) {
  switch (reply->type) {
    case REDIS_REPLY_NIL:
      return "nil (SET NX found the key taken)";
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
    case REDIS_REPLY_STRING:
      return absl::StrCat("reply type ", reply->type, ": ",
                          absl::string_view(reply->str, reply->len));
    default:
      return absl::StrCat("reply type ", reply->type);
  }
}

// One run: ping, or pairs of fresh keys "<tenant>:<run id>-<phase>-<seq>".
class RedisOps : public Workload {
 public:
  // Opens `in_flight` connections; null, with *error set, when one fails.
  static std::unique_ptr<RedisOps> Connect(const Fixture& fx, bool pairs,
                                           std::string phase, size_t in_flight,
                                           std::string* error) {
    std::unique_ptr<RedisOps> ops(
        new RedisOps(fx, pairs, std::move(phase), in_flight));
    ops->loop_ = RedisLoop::Connect(
        fx.host, fx.port, in_flight,
        [o = ops.get()](size_t conn, redisReply* reply,
                        absl::string_view error) {
          o->OnReply(conn, reply, error);
        },
        error);
    if (ops->loop_ == nullptr) return nullptr;
    return ops;
  }

  bool Start(size_t s, uint64_t seq, Done done) override {
    if (!loop_->alive(s)) return false;
    Slot& slot = slots_[s];
    slot.done = std::move(done);
    slot.storing = false;
    if (pairs_) {
      slot.key = absl::StrCat(fx_.tenants[seq % fx_.tenants.size()], ":",
                              fx_.run_id, "-", phase_, "-", seq);
    }
    loop_->RunInLoop([this, s] {
      const bool sent =
          pairs_ ? loop_->Send(s, {"SET", slots_[s].key, fx_.fingerprint, "NX",
                                   "PX", fx_.ttl_ms})
                 : loop_->Send(s, {"PING"});
      if (!sent) Finish(slots_[s], absl::StrCat("send: ", loop_->error(s)));
    });
    return true;
  }

 private:
  struct Slot {
    Done done;
    std::string key;
    bool storing = false;  // the reservation succeeded; the store is sent
  };

  RedisOps(const Fixture& fx, bool pairs, std::string phase, size_t in_flight)
      : fx_(fx), pairs_(pairs), phase_(std::move(phase)), slots_(in_flight) {}

  void OnReply(size_t conn, const redisReply* reply, absl::string_view error) {
    Slot& slot = slots_[conn];
    if (reply == nullptr) {
      return Finish(slot, absl::StrCat("connection failed: ", error));
    }
    if (!pairs_) {
      return Finish(slot, IsStatus(reply, "PONG") ? "" : Describe(reply));
    }
    if (slot.storing) {
      return Finish(slot, IsStatus(reply, "OK")
                              ? ""
                              : absl::StrCat("SET: ", Describe(reply)));
    }
    if (!IsStatus(reply, "OK")) {
      return Finish(slot, absl::StrCat("SET NX: ", Describe(reply)));
    }
    slot.storing = true;
    if (!loop_->Send(conn, {"SET", slot.key, fx_.response, "PX", fx_.ttl_ms})) {
      Finish(slot, absl::StrCat("send: ", loop_->error(conn)));
    }
  }

  void Finish(Slot& slot, std::string error) {
    // The engine starts the slot's next operation from inside `done`, which
    // replaces slot.done: call a moved-out copy.
    Done done = std::move(slot.done);
    done(OpEnd{std::move(error)});
  }

  const Fixture& fx_;
  const bool pairs_;
  const std::string phase_;
  std::vector<Slot> slots_;
  // Last: destroyed first, so its thread stops before the slots go.
  std::unique_ptr<RedisLoop> loop_;
};

class RedisTarget : public Target {
 public:
  explicit RedisTarget(Fixture fixture) : fx_(std::move(fixture)) {}

  bool Supports(absl::string_view scenario) const override {
    return scenario == "ping" || scenario == "pairs";
  }

  void Warmup(double seconds) override {
    if (seconds > 0) Run("ping", 4, seconds);
  }

  RunResult Run(absl::string_view scenario, size_t in_flight,
                double seconds) override {
    std::string error;
    std::unique_ptr<RedisOps> ops = RedisOps::Connect(
        fx_, scenario == "pairs", absl::StrCat(scenario, "-", runs_++),
        in_flight, &error);
    if (ops == nullptr) {
      RunResult failed;
      failed.errors = 1;
      failed.first_error = error;
      return failed;
    }
    return ClosedLoop(*ops, in_flight, seconds).Run();
  }

 private:
  const Fixture fx_;
  uint64_t runs_ = 0;
};

}  // namespace

std::unique_ptr<Target> ConnectRedisTarget(const std::string& address,
                                           const ScenarioOptions& options,
                                           std::string* error) {
  Fixture fx;
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(absl::string_view(address).substr(colon + 1),
                        &fx.port)) {
    *error = absl::StrCat("--redis=", address, " is not HOST:PORT");
    return nullptr;
  }
  fx.host = address.substr(0, colon);

  // One blocking PING, so that a Redis that is not there stops the program
  // with a plain message before any run.
  const timeval timeout{kConnectTimeoutMs / 1000, 0};
  redisContext* ctx =
      redisConnectWithTimeout(fx.host.c_str(), fx.port, timeout);
  redisReply* reply = ctx == nullptr || ctx->err != 0
                          ? nullptr
                          : static_cast<redisReply*>(redisCommand(ctx, "PING"));
  const bool ok = reply != nullptr && IsStatus(reply, "PONG");
  if (!ok) {
    *error = absl::StrCat("Redis at ", address, " does not answer PING: ",
                          ctx == nullptr     ? "out of memory"
                          : reply == nullptr ? ctx->errstr
                                             : Describe(reply));
  }
  if (reply != nullptr) freeReplyObject(reply);
  if (ctx != nullptr) redisFree(ctx);
  if (!ok) return nullptr;

  fx.tenants = TenantNames(options);
  fx.run_id = NewRunId();
  fx.fingerprint = RandomBytes(32);
  fx.response = std::string(options.response_bytes, 'x');
  fx.ttl_ms = absl::StrCat(
      (options.ttl_seconds > 0 ? options.ttl_seconds : kDefaultTtlSeconds) *
      1000);
  return std::make_unique<RedisTarget>(std::move(fx));
}

}  // namespace idemkey::bench
