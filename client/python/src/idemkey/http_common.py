"""What the HTTP adapters share: problem+json bodies, the response they
store (without the framing headers) and the headers of its replay."""

import json
from typing import Iterable, List, Tuple

from idemkey.core import Rejection
from idemkey.v1 import idemkey_pb2 as pb

KEY_HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotency-Replayed"
BODY_OMITTED_HEADER = "Idempotency-Body-Omitted"
#: Framing headers the server writes: neither stored nor replayed (the
#: replay's own Content-Length is computed), as cpp-httplib does.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding",
                             "connection", "keep-alive"})


def problem(rejection: Rejection) -> Tuple[int, List[Tuple[str, str]], bytes]:
    """(status, headers, body) of the RFC 7807 answer to `rejection`."""
    status = rejection.reason.http_status
    body = json.dumps(
        {"type": rejection.reason.problem_type, "title": rejection.title,
         "status": status, "detail": rejection.detail},
        separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
    headers = [("Content-Type", "application/problem+json")]
    if rejection.reason.http_status == 409:
        headers.append(("Retry-After", str(rejection.retry_after_seconds)))
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body


def stored_response(status: int, headers: Iterable[Tuple[str, bytes]],
                    body: bytes) -> pb.StoredResponse:
    """The response to store: status, body and the headers but framing."""
    stored = pb.StoredResponse(status_code=status, body=body)
    for name, value in headers:
        if name.lower() not in FRAMING_HEADERS:
            stored.headers.add(name=name, value=value)
    return stored


def replay_headers(stored: pb.StoredResponse) -> List[Tuple[str, bytes]]:
    """The stored headers, the markers and a Content-Length for the body."""
    out = [(h.name, h.value) for h in stored.headers
           if h.name.lower() not in FRAMING_HEADERS]
    out.append((REPLAYED_HEADER, b"true"))
    if stored.body_omitted:
        out.append((BODY_OMITTED_HEADER, b"true"))
    out.append(("Content-Length", str(len(stored.body)).encode()))
    return out
