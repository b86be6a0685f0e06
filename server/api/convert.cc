#include "server/api/convert.h"

#include <string>

#include "absl/time/time.h"

namespace idemkey::api {

google::protobuf::Timestamp ToTimestamp(int64_t unix_ms) {
  google::protobuf::Timestamp t;
  t.set_seconds(unix_ms / 1000);
  t.set_nanos(static_cast<int32_t>(unix_ms % 1000) * 1000000);
  return t;
}

google::protobuf::Duration ToDuration(int64_t ms) {
  google::protobuf::Duration d;
  d.set_seconds(ms / 1000);
  d.set_nanos(static_cast<int32_t>(ms % 1000) * 1000000);
  return d;
}

int64_t DurationMillis(const google::protobuf::Duration& d) {
  return absl::ToInt64Milliseconds(absl::Seconds(d.seconds()) +
                                   absl::Nanoseconds(d.nanos()));
}

idemkey::v1::Record ToProto(store::Record&& r) {
  idemkey::v1::Record out;
  out.set_key(std::move(r.key));
  out.set_state(r.state == store::RecordState::kCompleted
                    ? idemkey::v1::STATE_COMPLETED
                    : idemkey::v1::STATE_IN_PROGRESS);
  out.set_fingerprint(std::move(r.fingerprint));
  out.set_fencing_token(r.fencing_token);
  out.set_attempt_id(std::move(r.attempt_id));
  if (r.lease_expires_ms != 0) {
    *out.mutable_lease_expires_at() = ToTimestamp(r.lease_expires_ms);
  }
  *out.mutable_created_at() = ToTimestamp(r.created_ms);
  *out.mutable_expires_at() = ToTimestamp(r.expires_ms);
  *out.mutable_ttl() = ToDuration(r.ttl_ms);
  if (r.state == store::RecordState::kCompleted) {
    out.mutable_response()->Swap(&r.response);
    *out.mutable_completed_at() = ToTimestamp(r.completed_ms);
  }
  return out;
}

}  // namespace idemkey::api
