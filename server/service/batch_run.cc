#include "server/service/batch_run.h"

#include <atomic>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "server/api/key_calls.h"
#include "server/service/tenant_cap_note.h"

namespace idemkey::service {
namespace {

// A batch whose refused ops run on the pool; the last task to end calls
// `done`. Shared by those tasks.
struct PoolPart {
  store::KeyStore* store;
  const idemkey::v1::BatchRequest* request;
  idemkey::v1::BatchResponse* response;
  BatchCallbacks callbacks;
  // Indices of the ops each task runs; set before the first task starts.
  std::vector<std::vector<int>> refused;
  std::atomic<size_t> tasks_left;

  // Op `i` into its result, allowed to wait for I/O.
  void Run(int i) {
    idemkey::v1::BatchResult* result = response->mutable_results(i);
    result->Clear();  // a refused run may have left part of a response
    absl::Status s = api::RunOp(*store, request->ops(i), callbacks.authorize,
                                callbacks.may_create, result,
                                store::CallOptions{.may_wait_for_io = true});
    NoteTenantCap(s);
    if (!s.ok()) api::SetOpError(s, result);
  }

  // The ops of refused[task], in order; then the task has ended.
  void RunTask(size_t task) {
    for (int i : refused[task]) Run(i);
    TaskEnded();
  }

  void TaskEnded() {
    if (tasks_left.fetch_sub(1) == 1) {
      std::move(callbacks.done)(absl::OkStatus());
    }
  }
};

}  // namespace

void RunBatch(store::KeyStore* store, util::ThreadPool* pool,
              const idemkey::v1::BatchRequest& request,
              idemkey::v1::BatchResponse* response, BatchCallbacks callbacks) {
  if (request.ops_size() > api::kMaxBatchOps) {
    std::move(callbacks.done)(absl::InvalidArgumentError(
        absl::StrCat("a batch carries at most ", api::kMaxBatchOps,
                     " ops, not ", request.ops_size(), "; split it")));
    return;
  }
  response->mutable_results()->Reserve(request.ops_size());
  for (int i = 0; i < request.ops_size(); ++i) response->add_results();

  // The ops of each record the store refused, in order: one pool task each.
  std::vector<std::vector<int>> refused;
  absl::flat_hash_map<std::pair<absl::string_view, absl::string_view>, size_t>
      refused_index;
  for (int i = 0; i < request.ops_size(); ++i) {
    const auto record = api::RecordOf(request.ops(i));
    if (auto it = refused_index.find(record); it != refused_index.end()) {
      refused[it->second].push_back(i);  // after its record's earlier ops
      continue;
    }
    idemkey::v1::BatchResult* result = response->mutable_results(i);
    absl::Status s = api::RunOp(*store, request.ops(i), callbacks.authorize,
                                callbacks.may_create, result,
                                store::CallOptions{.may_wait_for_io = false});
    if (store::IsWouldBlock(s)) {
      refused_index.emplace(record, refused.size());
      refused.push_back({i});
      continue;
    }
    NoteTenantCap(s);
    if (!s.ok()) api::SetOpError(s, result);
  }
  if (refused.empty()) {
    std::move(callbacks.done)(absl::OkStatus());
    return;
  }

  auto part = std::make_shared<PoolPart>();
  part->store = store;
  part->request = &request;
  part->response = response;
  part->callbacks = std::move(callbacks);
  part->tasks_left = refused.size();
  part->refused = std::move(refused);
  for (size_t task = 0; task < part->refused.size(); ++task) {
    if (pool->Submit([part, task] { part->RunTask(task); })) continue;
    for (int i : part->refused[task]) {
      api::SetOpError(absl::UnavailableError("idemkeyd is shutting down; "
                                             "this op was not applied, retry"),
                      response->mutable_results(i));
    }
    part->TaskEnded();
  }
}

}  // namespace idemkey::service
