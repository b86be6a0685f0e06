"""Limits and validation shared by the middleware and the in-memory service
(docs/semantics.md, "Limits"); messages name the value and the rule."""

from typing import Optional, Union

MAX_TENANT_NAME_BYTES = 64
FINGERPRINT_BYTES = 32
MAX_KEY_BYTES = 256
MAX_ATTEMPT_ID_BYTES = 128


def _excerpt(value: bytes) -> str:
    out = ""
    for c in value[:40]:
        out += chr(c) if 0x20 <= c < 0x7F and c not in b'"\\' else "\\x%02x" % c
    return '"' + out + ('"...' if len(value) > 40 else '"')


def printable_error(field: str, value: Union[str, bytes], min_bytes: int,
                    max_bytes: int) -> Optional[str]:
    """Why `value` is not min..max bytes of printable ASCII, or None."""
    if isinstance(value, str):
        try:
            value = value.encode("latin-1")
        except UnicodeEncodeError:
            value = value.encode("utf-8")
    rule = "it must be %d-%d bytes of printable ASCII (0x21-0x7E)" % (
        min_bytes, max_bytes)
    if not min_bytes <= len(value) <= max_bytes:
        return "%s is %d bytes; %s" % (field, len(value), rule)
    for i, c in enumerate(value):
        if not 0x21 <= c <= 0x7E:
            return "%s %s has byte 0x%02x at offset %d; %s" % (
                field, _excerpt(value), c, i, rule)
    return None


def key_error(key: Union[str, bytes], max_key_bytes: int = MAX_KEY_BYTES
              ) -> Optional[str]:
    """Why `key` is not a valid Idempotency-Key, or None."""
    return printable_error("key", key, 1, max_key_bytes)


def tenant_name_error(tenant: str) -> Optional[str]:
    """Why `tenant` is not a valid tenant name, or None."""
    rule = ("a tenant name is 1-64 characters of [a-z0-9._-] starting with "
            "a letter or digit")
    raw = tenant.encode("utf-8")
    if not 1 <= len(raw) <= MAX_TENANT_NAME_BYTES:
        return "tenant name is %d bytes; %s" % (len(raw), rule)
    allowed = set(b"abcdefghijklmnopqrstuvwxyz0123456789")
    if raw[0] not in allowed:
        return "tenant name %s starts with a bad character; %s" % (
            _excerpt(raw), rule)
    if any(c not in allowed and c not in b"._-" for c in raw):
        return "tenant name %s has a bad character; %s" % (_excerpt(raw), rule)
    return None
