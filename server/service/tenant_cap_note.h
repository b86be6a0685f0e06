// tenant_cap_note.h — the tenant cap goes to the operators' log.
//
// A Reserve refused because the server holds --max_tenants is the
// operators' business: the app's client only hears "unavailable", and
// idemkeyd's log says why (at most every 10 s, however many calls hit it).
// Every path a Reserve takes (unary, Stream) passes its status here.
//
//   absl::Status s = api::Reserve(...);
//   NoteTenantCap(s);

#ifndef IDEMKEY_SERVER_SERVICE_TENANT_CAP_NOTE_H_
#define IDEMKEY_SERVER_SERVICE_TENANT_CAP_NOTE_H_

#include "absl/status/status.h"

namespace idemkey::service {

// Logs `s` as a warning when it is the tenant cap (store::IsTenantCap) and
// nothing was logged in the last 10 s. Thread-safe.
void NoteTenantCap(const absl::Status& s);

}  // namespace idemkey::service

#endif  // IDEMKEY_SERVER_SERVICE_TENANT_CAP_NOTE_H_
