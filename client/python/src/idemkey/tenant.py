"""A valid tenant name for any organisation id (docs/semantics.md, "Tenants
and auth"); the same rules as idemkey::rules::TenantNameFor, checked against
common/rules/testdata/tenant_name_vectors.json."""

import hashlib

from idemkey.rules import MAX_TENANT_NAME_BYTES, tenant_name_error

_HASH_HEX = 16
_MAX_READABLE = MAX_TENANT_NAME_BYTES - 2 - _HASH_HEX


def _looks_mapped(name: str) -> bool:
    if len(name) < _HASH_HEX + 2:
        return False
    tail = name[-(_HASH_HEX + 2):]
    return tail[:2] == "--" and all(c in "0123456789abcdef" for c in tail[2:])


def tenant_name_for(org_id: str) -> str:
    """`org_id` itself when it is a valid tenant name that does not look
    mapped; "" for ""; else its readable part, "--" and 16 hex digits of its
    SHA-256 ("Acme Corp" -> "acme-corp--a73cb4563ee2e72c")."""
    if not org_id:
        return ""
    if tenant_name_error(org_id) is None and not _looks_mapped(org_id):
        return org_id
    raw = org_id.encode("utf-8")
    readable = ""
    for c in raw:
        ch = chr(c)
        if c < 0x80 and ch.isalnum():
            readable += ch.lower()
        elif readable and readable[-1] != "-":
            readable += "-"
        if len(readable) == _MAX_READABLE:
            break
    readable = readable.rstrip("-") or "org"
    return readable + "--" + hashlib.sha256(raw).hexdigest()[:_HASH_HEX]
