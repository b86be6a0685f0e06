// convert.h — between the idemkey.v1 wire types and the store's types.
//
//   int64_t ms = DurationMillis(request.ttl());   // 0 when unset
//   *response.mutable_expires_at() = ToTimestamp(expires_ms);

#ifndef IDEMKEY_SERVER_API_CONVERT_H_
#define IDEMKEY_SERVER_API_CONVERT_H_

#include <cstdint>

#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "idemkey/v1/idemkey.pb.h"
#include "server/store/record.h"

namespace idemkey::api {

google::protobuf::Timestamp ToTimestamp(int64_t unix_ms);
google::protobuf::Duration ToDuration(int64_t ms);
// Saturates instead of overflowing, so an absurd value fails range checks.
int64_t DurationMillis(const google::protobuf::Duration& d);

idemkey::v1::Record ToProto(store::Record&& record);

}  // namespace idemkey::api

#endif  // IDEMKEY_SERVER_API_CONVERT_H_
