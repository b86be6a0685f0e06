// convert.h — between the idemkey.v1 wire types and the store's types.
//
//   int64_t ms = DurationMillis(request.ttl());   // 0 when unset
//   *response.mutable_expires_at() = ToTimestamp(expires_ms);
//   reactor->Finish(ToGrpcStatus(store_status));

#ifndef IDEMKEY_SERVER_SERVICE_CONVERT_H_
#define IDEMKEY_SERVER_SERVICE_CONVERT_H_

#include <cstdint>

#include "absl/status/status.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "grpcpp/support/status.h"
#include "idemkey/v1/idemkey.pb.h"
#include "server/store/record.h"

namespace idemkey::service {

google::protobuf::Timestamp ToTimestamp(int64_t unix_ms);
google::protobuf::Duration ToDuration(int64_t ms);
// Saturates instead of overflowing, so an absurd value fails range checks.
int64_t DurationMillis(const google::protobuf::Duration& d);

idemkey::v1::Record ToProto(store::Record&& record);

// absl and gRPC share the canonical code numbers.
grpc::Status ToGrpcStatus(const absl::Status& s);

}  // namespace idemkey::service

#endif  // IDEMKEY_SERVER_SERVICE_CONVERT_H_
