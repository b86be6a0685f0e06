// idemkey-crash-loop — kill -9 idemkeyd under write load, again and again,
// and check that nothing it acknowledged is ever lost.
//
// Each cycle starts the real idemkeyd on one data directory (the same for
// every cycle), runs --writers threads of Reserve + Complete pairs (with some
// Heartbeats and Releases) against it, SIGKILLs it at a random moment in
// [--min_ms, --max_ms], restarts it and verifies the whole ledger of every
// cycle so far:
//
//   - an acknowledged Reserve is there, IN_PROGRESS or COMPLETED, with the
//     fencing token it was acknowledged with;
//   - an acknowledged Complete is COMPLETED with the same response bytes;
//   - an acknowledged Release is absent;
//   - a call in flight at the kill may have applied or not, but nothing else
//     (a Complete in doubt is IN_PROGRESS or COMPLETED with its response);
//     whatever the restarted server shows is then taken as settled, and must
//     survive every later crash;
//   - no record exists that was never asked for;
//   - every fencing token handed out after a restart exceeds every token seen
//     before it.
//
// It prints one line per cycle and a summary; exit status 0 when no rule was
// broken, 1 otherwise (each violation is printed), 2 on a setup failure.
//
//   idemkey-crash-loop --cycles=100 --seed=42
//
// --inject_loss proves that the verifier notices a loss: after the first
// restart it deletes one acknowledged record through AdminService.DeleteRecord
// before verifying, so the run must fail naming that record.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "tests/support/idemkeyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_client.h"

ABSL_FLAG(int32_t, cycles, 5, "kill -9 / restart / verify cycles to run");
ABSL_FLAG(int32_t, writers, 16, "threads writing during each cycle");
ABSL_FLAG(int32_t, min_ms, 200,
          "earliest kill moment, in ms after the load starts");
ABSL_FLAG(int32_t, max_ms, 1500,
          "latest kill moment, in ms after the load starts");
ABSL_FLAG(uint64_t, seed, 0,
          "random seed for kill moments and the operation mix; 0 picks one "
          "(printed, so a failing run can be repeated)");
ABSL_FLAG(bool, sync, true, "run idemkeyd with --sync=true or --sync=false");
ABSL_FLAG(std::string, data_dir, "",
          "idemkeyd data directory to use (kept); empty: a temporary one, "
          "removed unless a violation was found");
ABSL_FLAG(bool, inject_loss, false,
          "after the first restart, delete one acknowledged record through "
          "AdminService.DeleteRecord before verifying: the run must then "
          "fail, naming it (a test of the verifier)");

namespace idemkey::testing {
namespace {

using idemkey::v1::OUTCOME_COMPLETED;
using idemkey::v1::OUTCOME_OWNER;
using idemkey::v1::STATE_COMPLETED;
using idemkey::v1::STATE_IN_PROGRESS;

const char* const kTenants[] = {"acme", "globex", "initech"};
// Long enough that no lease lapses during a long run (a lapsed lease would
// still be IN_PROGRESS, but keep the ledger simple).
constexpr int64_t kLeaseSeconds = 3600;

// What the ledger knows of one key.
enum class Fate {
  kReserved,    // Reserve acknowledged (maybe Heartbeats): IN_PROGRESS
  kCompleting,  // Complete sent, no answer: IN_PROGRESS or COMPLETED
  kCompleted,   // Complete acknowledged: COMPLETED, same response
  kReleasing,   // Release sent, no answer: IN_PROGRESS or absent
  kReleased,    // Release acknowledged: absent
};

struct Entry {
  std::string tenant;
  uint64_t token = 0;
  Fate fate = Fate::kReserved;
};

struct CycleStats {
  int64_t reserves = 0, completes = 0, releases = 0, heartbeats = 0,
          replays = 0, in_doubt = 0;
};

class CrashLoop {
 public:
  CrashLoop(std::string data_dir, uint64_t seed)
      : server_(std::move(data_dir),
                {absl::GetFlag(FLAGS_sync) ? "--sync=true" : "--sync=false"}),
        rng_(seed),
        seed_(seed) {}

  int Run() {
    const int cycles = absl::GetFlag(FLAGS_cycles);
    const int min_ms = absl::GetFlag(FLAGS_min_ms);
    const int max_ms = std::max(min_ms, absl::GetFlag(FLAGS_max_ms));
    if (auto started = server_.Start(); !started) {
      std::cerr << "idemkeyd did not start: " << started.message() << "\n";
      return 2;
    }
    for (int cycle = 1; cycle <= cycles; ++cycle) {
      const int kill_ms =
          std::uniform_int_distribution<int>(min_ms, max_ms)(rng_);
      CycleStats stats = Load(cycle, kill_ms);
      const auto restart_start = std::chrono::steady_clock::now();
      if (auto started = server_.Start(); !started) {
        std::cerr << "idemkeyd did not restart after kill " << cycle << ": "
                  << started.message() << "\n";
        return 2;
      }
      const double restart_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                        restart_start)
              .count();
      if (cycle == 1 && absl::GetFlag(FLAGS_inject_loss) && !InjectLoss()) {
        return 2;
      }
      const size_t violations_before = violations_.size();
      std::string verified = Verify();
      const uint64_t probe = ProbeToken(cycle);
      std::cout << "cycle " << cycle << "/" << cycles << ": killed at "
                << kill_ms << " ms; acked " << stats.reserves << " reserves, "
                << stats.completes << " completes, " << stats.releases
                << " releases, " << stats.heartbeats << " heartbeats, "
                << stats.replays << " replays; " << stats.in_doubt
                << " in doubt; restart " << static_cast<int>(restart_s * 1000)
                << " ms; " << verified << "; next token " << probe << " > "
                << max_token_before_probe_ << "; "
                << (violations_.size() == violations_before ? "OK"
                                                            : "VIOLATIONS")
                << std::endl;
      total_.reserves += stats.reserves;
      total_.completes += stats.completes;
      total_.releases += stats.releases;
      total_.heartbeats += stats.heartbeats;
      total_.replays += stats.replays;
      total_.in_doubt += stats.in_doubt;
      for (size_t i = violations_before;
           i < violations_.size() && i < violations_before + 20; ++i) {
        std::cout << "  VIOLATION: " << violations_[i] << "\n";
      }
      if (violations_.size() > violations_before + 20) {
        std::cout << "  ... and " << violations_.size() - violations_before - 20
                  << " more\n";
      }
    }
    const bool stopped = static_cast<bool>(server_.Stop());
    if (!stopped)
      Violation("idemkeyd did not stop cleanly after the last cycle");
    std::cout << "crash loop: " << cycles << " kill -9 cycles, seed " << seed_
              << ", " << absl::GetFlag(FLAGS_writers) << " writers; acked "
              << total_.reserves << " reserves, " << total_.completes
              << " completes, " << total_.releases << " releases, "
              << total_.heartbeats << " heartbeats, " << total_.replays
              << " replays; " << total_.in_doubt << " calls in doubt; "
              << ledger_.size() << " keys in the ledger; " << violations_.size()
              << " violations: " << (violations_.empty() ? "PASS" : "FAIL")
              << std::endl;
    return violations_.empty() ? 0 : 1;
  }

 private:
  void Violation(std::string what) {
    std::lock_guard<std::mutex> lock(mu_);
    violations_.push_back(std::move(what));
  }

  // Runs the writers until the kill, `kill_ms` after they start; returns what
  // was acknowledged. The ledger is updated as answers come in.
  CycleStats Load(int cycle, int kill_ms) {
    const int writers = absl::GetFlag(FLAGS_writers);
    std::atomic<bool> killed{false};
    std::vector<CycleStats> stats(writers);
    std::vector<std::thread> threads;
    std::vector<uint64_t> writer_seeds;
    for (int w = 0; w < writers; ++w) writer_seeds.push_back(rng_());
    for (int w = 0; w < writers; ++w) {
      threads.emplace_back(
          [&, w] { Write(cycle, w, writer_seeds[w], killed, stats[w]); });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kill_ms));
    killed = true;
    server_.Kill9();
    for (auto& t : threads) t.join();
    CycleStats sum;
    for (const CycleStats& s : stats) {
      sum.reserves += s.reserves;
      sum.completes += s.completes;
      sum.releases += s.releases;
      sum.heartbeats += s.heartbeats;
      sum.replays += s.replays;
      sum.in_doubt += s.in_doubt;
    }
    if (sum.reserves == 0) {
      Violation("cycle " + std::to_string(cycle) +
                ": no Reserve acknowledged before the kill; nothing tested");
    }
    return sum;
  }

  // A failed call: expected once the server is killed; a violation before.
  // Returns false (the writer stops) either way.
  bool Failed(const std::atomic<bool>& killed, const std::string& what,
              const grpc::Status& status) {
    if (!killed) {
      Violation(what + " failed before the kill: " +
                std::to_string(status.error_code()) + " " +
                status.error_message());
    }
    return false;
  }

  void Set(const std::string& key, Entry e) {
    std::lock_guard<std::mutex> lock(mu_);
    ledger_[key] = std::move(e);
  }
  void SetFate(const std::string& key, Fate fate) {
    std::lock_guard<std::mutex> lock(mu_);
    ledger_[key].fate = fate;
  }

  void Write(int cycle, int w, uint64_t seed, const std::atomic<bool>& killed,
             CycleStats& stats) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> percent(0, 99);
    TestClient c(server_.NewChannel());
    for (int i = 0;; ++i) {
      const std::string tenant = kTenants[rng() % 3];
      const std::string key = "c" + std::to_string(cycle) + "-w" +
                              std::to_string(w) + "-" + std::to_string(i);
      const std::string what = tenant + "/" + key;
      auto req = ReserveReq(tenant, key, key, "attempt-" + key);
      req.mutable_lease()->set_seconds(kLeaseSeconds);
      {
        std::lock_guard<std::mutex> lock(mu_);
        maybe_reserved_[key] = tenant;  // in flight
      }
      auto r = c.Reserve(req);
      if (!r.status.ok()) {
        ++stats.in_doubt;
        Failed(killed, "Reserve " + what, r.status);
        return;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        maybe_reserved_.erase(key);
      }
      const uint64_t token = r.reply.fencing_token();
      if (r.reply.outcome() != OUTCOME_OWNER) {
        Violation("Reserve " + what + " of a new key answered outcome " +
                  std::to_string(r.reply.outcome()));
        return;
      }
      if (token <= max_token_before_cycle_) {
        Violation("Reserve " + what + " got token " + std::to_string(token) +
                  ", not above " + std::to_string(max_token_before_cycle_) +
                  " seen before the restart");
      }
      Set(key, {tenant, token, Fate::kReserved});
      ++stats.reserves;

      const int p = percent(rng);
      if (p < 25 || (p >= 70 && p < 85)) {  // a handler that takes a while
        auto h = c.Heartbeat(tenant, key, token, kLeaseSeconds);
        if (!h.status.ok()) {
          return void(Failed(killed, "Heartbeat " + what, h.status));
        }
        ++stats.heartbeats;
      }
      if (p < 70) {  // the common case: the handler ran, store the response
        SetFate(key, Fate::kCompleting);
        auto d = c.Complete(tenant, key, token, SampleResponse(key));
        if (!d.status.ok()) {
          ++stats.in_doubt;
          return void(Failed(killed, "Complete " + what, d.status));
        }
        SetFate(key, Fate::kCompleted);
        ++stats.completes;
        if (p < 5) {  // a client retry: replays the stored response
          auto again = c.Reserve(ReserveReq(tenant, key, key, "retry"));
          if (!again.status.ok()) {
            return void(Failed(killed, "replay Reserve " + what, again.status));
          }
          if (again.reply.outcome() != OUTCOME_COMPLETED ||
              again.reply.response().SerializeAsString() !=
                  SampleResponse(key).SerializeAsString()) {
            Violation("retry of completed " + what +
                      " did not replay its response");
          }
          ++stats.replays;
        }
      } else if (p >= 85 && p < 95) {  // the handler gave up: release
        SetFate(key, Fate::kReleasing);
        auto rel = c.Release(tenant, key, token);
        if (!rel.status.ok()) {
          ++stats.in_doubt;
          return void(Failed(killed, "Release " + what, rel.status));
        }
        SetFate(key, Fate::kReleased);
        ++stats.releases;
      }
      // else: left IN_PROGRESS (a handler still running at the crash).
    }
  }

  // Deletes the first acknowledged Complete of the ledger (or Reserve, if no
  // Complete was acknowledged), as a store that lost it would. False if
  // nothing could be deleted.
  bool InjectLoss() {
    auto acked = std::find_if(ledger_.begin(), ledger_.end(), [](auto& e) {
      return e.second.fate == Fate::kCompleted;
    });
    if (acked == ledger_.end()) {
      acked = std::find_if(ledger_.begin(), ledger_.end(), [](auto& e) {
        return e.second.fate == Fate::kReserved;
      });
    }
    if (acked == ledger_.end()) {
      std::cerr << "--inject_loss: no acknowledged write to delete\n";
      return false;
    }
    const auto& [key, entry] = *acked;
    auto deleted =
        TestClient(server_.NewChannel()).DeleteRecord(entry.tenant, key);
    if (!deleted.status.ok()) {
      std::cerr << "--inject_loss: DeleteRecord " << entry.tenant << "/" << key
                << " failed: " << deleted.status.error_message() << "\n";
      return false;
    }
    std::cout << "injected loss: deleted " << entry.tenant << "/" << key
              << " (acknowledged "
              << (entry.fate == Fate::kCompleted ? "Complete" : "Reserve")
              << ") after the restart" << std::endl;
    return true;
  }

  // Lists every record of every tenant, checks the ledger against it, and
  // settles what was in doubt to what the server shows. Returns a summary.
  std::string Verify() {
    TestClient c(server_.NewChannel());
    std::map<std::string, idemkey::v1::Record> seen;  // "tenant/key"
    for (const char* tenant : kTenants) {
      std::string page_token;
      do {
        idemkey::v1::ListRecordsRequest req;
        req.set_tenant(tenant);
        req.set_page_size(1000);
        req.set_include_responses(true);
        req.set_page_token(page_token);
        auto r = c.ListRecords(req);
        if (!r.status.ok()) {
          // A tenant nobody wrote to yet is unknown.
          if (r.status.error_code() != grpc::StatusCode::NOT_FOUND) {
            Violation(std::string("ListRecords ") + tenant + ": " +
                      r.status.error_message());
          }
          break;
        }
        for (const auto& rec : r.reply.records()) {
          seen[std::string(tenant) + "/" + rec.key()] = rec;
          max_token_ = std::max(max_token_, rec.fencing_token());
        }
        page_token = r.reply.next_page_token();
      } while (!page_token.empty());
    }

    int64_t in_progress = 0, completed = 0, absent = 0;
    std::set<std::string> explained;
    for (auto& entry : ledger_) {
      // Named, not a structured binding: clang 14's lambdas cannot capture
      // a binding (C++20).
      const std::string& key = entry.first;
      Entry& e = entry.second;
      const std::string path = e.tenant + "/" + key;
      max_token_ = std::max(max_token_, e.token);
      auto it = seen.find(path);
      const idemkey::v1::Record* rec = it == seen.end() ? nullptr : &it->second;
      if (rec != nullptr) explained.insert(path);
      auto expect_token = [&] {
        if (rec->fencing_token() != e.token) {
          Violation(path + " has token " +
                    std::to_string(rec->fencing_token()) + ", acknowledged " +
                    std::to_string(e.token));
        }
      };
      auto expect_response = [&] {
        if (rec->response().SerializeAsString() !=
            SampleResponse(key).SerializeAsString()) {
          Violation(path + " is COMPLETED with a different response");
        }
      };
      switch (e.fate) {
        case Fate::kReserved:
          if (rec == nullptr) {
            Violation(path + ": acknowledged Reserve lost");
          } else if (rec->state() != STATE_IN_PROGRESS) {
            Violation(path + ": reserved, but state " +
                      std::to_string(rec->state()));
          } else {
            expect_token();
          }
          break;
        case Fate::kCompleted:
          if (rec == nullptr) {
            Violation(path + ": acknowledged Complete lost (record absent)");
          } else if (rec->state() != STATE_COMPLETED) {
            Violation(path + ": acknowledged Complete lost (state " +
                      std::to_string(rec->state()) + ")");
          } else {
            expect_token();
            expect_response();
          }
          break;
        case Fate::kCompleting:
          if (rec == nullptr) {
            Violation(path + ": reserved (Complete in doubt), but absent");
          } else {
            expect_token();
            if (rec->state() == STATE_COMPLETED) {
              expect_response();
              e.fate = Fate::kCompleted;
            } else {
              e.fate = Fate::kReserved;
            }
          }
          break;
        case Fate::kReleased:
          if (rec != nullptr) {
            Violation(path + ": acknowledged Release undone (state " +
                      std::to_string(rec->state()) + ")");
          }
          break;
        case Fate::kReleasing:
          if (rec == nullptr) {
            e.fate = Fate::kReleased;
          } else if (rec->state() != STATE_IN_PROGRESS) {
            Violation(path + ": Release in doubt, but state " +
                      std::to_string(rec->state()));
          } else {
            expect_token();
            e.fate = Fate::kReserved;
          }
          break;
      }
      if (rec == nullptr) {
        ++absent;
      } else if (rec->state() == STATE_COMPLETED) {
        ++completed;
      } else {
        ++in_progress;
      }
    }
    // Reserves in flight at the kill: applied or not; settle to what is seen.
    for (const auto& [key, tenant] : maybe_reserved_) {
      const std::string path = tenant + "/" + key;
      auto it = seen.find(path);
      if (it == seen.end()) continue;
      explained.insert(path);
      if (it->second.state() != STATE_IN_PROGRESS) {
        Violation(path + ": Reserve in doubt, but state " +
                  std::to_string(it->second.state()));
      }
      ledger_[key] = {tenant, it->second.fencing_token(), Fate::kReserved};
      ++in_progress;
    }
    maybe_reserved_.clear();
    for (const auto& [path, rec] : seen) {
      if (!explained.count(path)) {
        Violation(path + ": record that was never reserved");
      }
    }
    std::ostringstream out;
    out << "verified " << ledger_.size() << " keys (" << completed
        << " completed, " << in_progress << " in progress, " << absent
        << " released)";
    return out.str();
  }

  // The first Reserve after the restart must get a token above every token
  // seen so far; later Reserves are checked against the same bound.
  uint64_t ProbeToken(int cycle) {
    max_token_before_probe_ = max_token_;
    TestClient c(server_.NewChannel());
    auto req = ReserveReq(kTenants[0], "probe-" + std::to_string(cycle),
                          "probe", "probe");
    req.mutable_lease()->set_seconds(kLeaseSeconds);
    auto r = c.Reserve(req);
    if (!r.status.ok()) {
      Violation("probe Reserve failed: " + r.status.error_message());
      return 0;
    }
    const uint64_t token = r.reply.fencing_token();
    ledger_["probe-" + std::to_string(cycle)] = {kTenants[0], token,
                                                 Fate::kReserved};
    if (token <= max_token_) {
      Violation("token " + std::to_string(token) +
                " after restart is not above " + std::to_string(max_token_));
    }
    max_token_ = std::max(max_token_, token);
    max_token_before_cycle_ = max_token_;
    return token;
  }

  IdemkeydProcess server_;
  std::mt19937_64 rng_;
  const uint64_t seed_;
  std::mutex mu_;
  std::map<std::string, Entry> ledger_;                // key -> entry
  std::map<std::string, std::string> maybe_reserved_;  // key -> tenant
  std::vector<std::string> violations_;
  uint64_t max_token_ = 0;               // largest token seen anywhere
  uint64_t max_token_before_cycle_ = 0;  // bound for this cycle's tokens
  uint64_t max_token_before_probe_ = 0;
  CycleStats total_;
};

}  // namespace
}  // namespace idemkey::testing

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "kill -9 idemkeyd under write load, restart it, and verify that every "
      "acknowledged Reserve, Complete and Release survived.\n"
      "  idemkey-crash-loop --cycles=100");
  absl::ParseCommandLine(argc, argv);
  uint64_t seed = absl::GetFlag(FLAGS_seed);
  if (seed == 0) seed = std::random_device()() | 1;
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  if (absl::GetFlag(FLAGS_cycles) < 1 || absl::GetFlag(FLAGS_writers) < 1 ||
      absl::GetFlag(FLAGS_min_ms) < 0) {
    std::cerr << "--cycles and --writers must be >= 1, --min_ms >= 0\n";
    return 2;
  }
  if (!data_dir.empty()) {
    idemkey::testing::CrashLoop loop(data_dir, seed);
    return loop.Run();
  }
  auto dir = std::make_unique<idemkey::testing::TempDir>();
  int rc;
  {
    idemkey::testing::CrashLoop loop(dir->path() + "/data", seed);
    rc = loop.Run();
  }
  if (rc != 0) {
    std::cout << "data and idemkeyd log kept in " << dir->path() << "\n";
    dir.release();  // leaked on purpose: the directory stays for inspection
  }
  return rc;
}
