// status.h — between absl::Status (the store, the middleware) and
// grpc::Status (the wire). The two share the canonical code numbers, so the
// conversion keeps the code and the message and nothing else:
//
//   grpc::Status wire = rules::ToGrpcStatus(store.Lookup(...).status());
//   absl::Status s = rules::FromGrpcStatus(stub->Lookup(&ctx, req, &resp));

#ifndef IDEMKEY_RULES_STATUS_H_
#define IDEMKEY_RULES_STATUS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"

namespace idemkey::rules {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);
// A code carried as a number (BatchResult.code); unknown numbers are UNKNOWN.
absl::Status StatusFromCode(int32_t code, absl::string_view message);

}  // namespace idemkey::rules

#endif  // IDEMKEY_RULES_STATUS_H_
