// fingerprint.h — the request fingerprint every idemkey middleware sends.
//
// A retry must carry the same request as the attempt it repeats: Reserve
// stores the fingerprint of the first request under the key and answers
// MISMATCH to any other. Every middleware, in every language, computes the
// same bytes (docs/semantics.md, "The fingerprint", with test vectors in
// common/rules/testdata/fingerprint_vectors.json):
//
//   SHA-256 over, for method, target and body in that order,
//   the part's length as 8 bytes little-endian, then the part's bytes.
//
// For HTTP: the method, the request target as sent (path and query string,
// not decoded) and the body; for gRPC: "grpc", the full method name and the
// serialized request message.
//
//   std::string fp = rules::Fingerprint("POST", "/v1/charges?amount=1", body);
//   // 32 raw bytes, for ReserveRequest.fingerprint
//
// The length prefixes keep ("POST", "/a", "b") and ("POST", "/ab", "") apart.

#ifndef IDEMKEY_RULES_FINGERPRINT_H_
#define IDEMKEY_RULES_FINGERPRINT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace idemkey::rules {

// The 32-byte SHA-256 digest described above. Thread-safe.
std::string Fingerprint(absl::string_view method, absl::string_view target,
                        absl::string_view body);

}  // namespace idemkey::rules

#endif  // IDEMKEY_RULES_FINGERPRINT_H_
