"""The request fingerprint (docs/semantics.md, "The fingerprint").

Every implementation must produce the same 32 bytes for the same request,
or a retry served by another language's middleware gets MISMATCH (422).
"""

import hashlib
import struct
from typing import Union

Text = Union[str, bytes]


def _as_bytes(part: Text) -> bytes:
    return part.encode("utf-8") if isinstance(part, str) else bytes(part)


def fingerprint(method: Text, target: Text, body: Text) -> bytes:
    """SHA-256 over method, target and body, each prefixed by its length
    as an unsigned 64-bit little-endian integer. Nothing is normalised;
    text is hashed as UTF-8."""
    h = hashlib.sha256()
    for part in (method, target, body):
        data = _as_bytes(part)
        h.update(struct.pack("<Q", len(data)))
        h.update(data)
    return h.digest()
