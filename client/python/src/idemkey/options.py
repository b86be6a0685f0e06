"""MiddlewareOptions, the observer's Event, and the request view that
tenant functions read (shared by every adapter)."""

import dataclasses
import datetime
import enum
from typing import Any, Callable, FrozenSet, Mapping, Optional, Union

from idemkey.errors import ServiceError
from idemkey.tenant import tenant_name_for

Seconds = Union[float, int, datetime.timedelta]


def seconds(value: Seconds) -> float:
    """A duration as float seconds (timedelta accepted)."""
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return float(value)


@dataclasses.dataclass(frozen=True)
class RequestInfo:
    """What a tenant function sees of a request, whatever the framework.
    `headers` has lower-case names (HTTP headers or gRPC metadata);
    `native` is the ASGI scope, the WSGI environ or the gRPC context."""

    method: str
    route: str
    headers: Mapping[str, str]
    native: Any = None

    def header(self, name: str) -> Optional[str]:
        """The first value of header `name` (any case), or None."""
        return self.headers.get(name.lower())


def org_id_header_tenant(request: RequestInfo) -> str:
    """The default tenant: the X-Org-Id header (gRPC: x-org-id metadata)
    mapped by tenant_name_for; no header, no tenant."""
    return tenant_name_for(request.header("x-org-id") or "")


class EventKind(str, enum.Enum):
    """What the middleware did (docs/semantics.md, "Seeing what the
    middleware does"); the value is the documented event name."""

    BYPASS = "bypass"
    RUN = "run"
    REPLAY = "replay"
    IN_PROGRESS = "in_progress"
    MISMATCH = "mismatch"
    REJECTED_KEY = "rejected_key"
    MISSING_TENANT = "missing_tenant"
    UNAVAILABLE = "unavailable"
    FAIL_OPEN_RUN = "fail_open_run"
    SERVICE_ERROR = "service_error"
    STORED = "stored"
    BODY_OMITTED = "body_omitted"
    RELEASED = "released"
    FINISH_FAILED = "finish_failed"
    LEASE_LOST = "lease_lost"


@dataclasses.dataclass(frozen=True)
class Event:
    """One decision or finish. `elapsed` is the seconds spent in the key
    service; `service_status` its error, if any (its message is for the
    app's operators only)."""

    kind: EventKind
    tenant: str
    route: str
    elapsed: float = 0.0
    service_status: Optional[ServiceError] = None


@dataclasses.dataclass
class MiddlewareOptions:
    """How the middleware behaves (docs/semantics.md, "Middleware").
    Durations are seconds (float) or timedelta."""

    #: Requests with other methods bypass (exact, case included).
    covered_methods: FrozenSet[str] = frozenset({"POST", "PUT", "PATCH",
                                                 "DELETE"})
    #: "METHOD ROUTE" strings that bypass, e.g. "POST /v1/auth/login".
    excluded_routes: FrozenSet[str] = frozenset()
    #: A covered request without a key: 400 (True) or run unprotected.
    require_key: bool = False
    #: A covered request without a tenant: 401 (True) or run unprotected.
    require_tenant: bool = False
    #: Longest accepted key; keep it at most idemkeyd's --max_key_bytes.
    max_key_bytes: int = 256
    #: Lease of each attempt.
    lease: Seconds = 30.0
    #: Heartbeat period while a handler runs; None: a third of `lease`.
    heartbeat_interval: Optional[Seconds] = None
    #: Threads renewing leases; a beat the service is slow to answer
    #: occupies one while the others beat the other leases.
    heartbeat_threads: int = 4
    #: Retention of completed responses; 0: the service's default (24 h).
    ttl: Seconds = 0.0
    #: Statuses released instead of stored (a retry runs the handler).
    not_final_statuses: FrozenSet[int] = frozenset({429, 503})
    #: No answer from the key service: run unprotected instead of 503.
    fail_open: bool = False
    #: Another attempt holds the key: wait this long for its result.
    wait_for_result: Seconds = 0.0
    wait_poll_interval: Seconds = 0.05
    #: Send the response before storing it (docs/semantics.md, "Storing
    #: after the response"): the app's client does not wait for the second
    #: durable write; until it lands an immediate retry gets 409 (or
    #: waits), and if the process dies first a retry runs the handler
    #: again once the lease lapses. The HTTP adapters store it right after
    #: sending, in the request's own task (WSGI: when the server closes the
    #: response); the gRPC adapter ignores it.
    store_after_response: bool = False
    #: The request's tenant name ("" = none); default: X-Org-Id mapped.
    tenant: Callable[[RequestInfo], str] = org_id_header_tenant
    #: Told of every decision and finish; must be thread-safe and quick.
    observer: Optional[Callable[[Event], None]] = None

    def __post_init__(self) -> None:
        self.covered_methods = frozenset(self.covered_methods)
        self.excluded_routes = frozenset(self.excluded_routes)
        self.not_final_statuses = frozenset(self.not_final_statuses)
        self.lease = seconds(self.lease)
        self.heartbeat_interval = (self.lease / 3 if self.heartbeat_interval
                                   is None else seconds(self.heartbeat_interval))
        self.ttl = seconds(self.ttl)
        self.wait_for_result = seconds(self.wait_for_result)
        self.wait_poll_interval = seconds(self.wait_poll_interval)
