// page_token.h — ListRecords' page tokens: opaque to callers, checked by us.
//
// A token carries the last key of the page it follows and a check of the
// listing it belongs to (tenant, key prefix), so a token that was made up,
// edited, or taken from another listing is refused instead of silently
// starting somewhere else:
//
//   std::string token = EncodePageToken("acme", "ch_", last_key);
//   absl::StatusOr<std::string> key = DecodePageToken("acme", "ch_", token);
//
// The check is a truncated SHA-256, not a secret: it catches mistakes, and
// a caller who can list the tenant learns nothing from forging one.

#ifndef IDEMKEY_SERVER_STORE_PAGE_TOKEN_H_
#define IDEMKEY_SERVER_STORE_PAGE_TOKEN_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace idemkey::store {

std::string EncodePageToken(absl::string_view tenant, absl::string_view prefix,
                            absl::string_view last_key);

// The last key of the previous page; INVALID_ARGUMENT for a token this
// listing did not hand out.
absl::StatusOr<std::string> DecodePageToken(absl::string_view tenant,
                                            absl::string_view prefix,
                                            absl::string_view token);

}  // namespace idemkey::store

#endif  // IDEMKEY_SERVER_STORE_PAGE_TOKEN_H_
