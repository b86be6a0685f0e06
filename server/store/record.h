// record.h — what the store keeps for one (tenant, key).
//
// A Record is a plain value: the state machine (key_store.h) decides how it
// changes, a Backend (backend.h) persists it, record_codec.h turns it into
// bytes. Times are Unix milliseconds.
//
//   Record r;
//   r.state = RecordState::kInProgress;
//   r.fencing_token = 7;
//   bool gone = r.ExpiredAt(clock->NowMillis());

#ifndef IDEMKEY_SERVER_STORE_RECORD_H_
#define IDEMKEY_SERVER_STORE_RECORD_H_

#include <cstdint>
#include <string>

#include "idemkey/v1/idemkey.pb.h"

namespace idemkey::store {

// Values are written to disk (record_codec.h): never renumber.
enum class RecordState : uint8_t {
  kInProgress = 1,  // an attempt holds the lease
  kCompleted = 2,   // the response is stored
};

struct Record {
  // The Idempotency-Key. Not part of the encoded value: backends keep it as
  // the storage key and fill it in on reads.
  std::string key;
  RecordState state = RecordState::kInProgress;
  // SHA-256 of the request that reserved the key.
  std::string fingerprint;
  // Token of the attempt holding (or last holding) the lease. Tokens are
  // unique per backend and grow every time a lease changes hands.
  uint64_t fencing_token = 0;
  std::string attempt_id;
  int64_t lease_expires_ms = 0;  // 0 once completed
  int64_t created_ms = 0;
  // The record is absent for every read from this instant on. While in
  // progress it is at least the lease expiry; once completed, completion+ttl.
  int64_t expires_ms = 0;
  int64_t ttl_ms = 0;                    // retention after completion
  int64_t completed_ms = 0;              // 0 while in progress
  idemkey::v1::StoredResponse response;  // only when completed

  bool ExpiredAt(int64_t now_ms) const { return expires_ms <= now_ms; }
  bool LeaseLiveAt(int64_t now_ms) const { return lease_expires_ms > now_ms; }
};

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_RECORD_H_
