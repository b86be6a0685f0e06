// tenant_name.h — a valid tenant name for any organisation id.
//
// Tenant names are 1-64 of [a-z0-9._-] starting with a letter or digit
// (docs/semantics.md, "Limits"); the ids apps key their accounts by are
// often not ("Acme Corp", mixed-case UUIDs, long ids). TenantNameFor maps
// every id to a valid name, the same one every time, and different ids to
// different names:
//
//   rules::TenantNameFor("acme")        // "acme": already valid, unchanged
//   rules::TenantNameFor("Acme Corp")   // "acme-corp--1f0e...": readable
//                                       // part, then 16 hex of SHA-256
//
// An id that is a valid name maps to itself unless it looks like a mapped
// name (ends in "--" and 16 hex digits); every other id maps to a mapped
// name. So the two kinds never meet, and two ids share a mapped name only if
// their SHA-256 share the first 64 bits. An empty id maps to "" (no tenant),
// so a request without an organisation stays without a tenant.
// Thread-safe.

#ifndef IDEMKEY_RULES_TENANT_NAME_H_
#define IDEMKEY_RULES_TENANT_NAME_H_

#include <string>

#include "absl/strings/string_view.h"

namespace idemkey::rules {

std::string TenantNameFor(absl::string_view org_id);

}  // namespace idemkey::rules

#endif  // IDEMKEY_RULES_TENANT_NAME_H_
