"""The idempotency middleware, free of any framework type.

An adapter (idemkey.asgi, idemkey.wsgi, idemkey.grpc_server) turns its
request into an IncomingRequest, asks begin() what to do and acts on the
Decision:

    core = IdempotencyCore(keys, MiddlewareOptions())
    d = core.begin(IncomingRequest("POST", "/v1/charges", target=b"/v1/charges",
                                   tenant="acme", key="k1", body=b"{}"))
    BYPASS: run the handler, record nothing
    RUN:    run the handler; d.execution.finish(stored_response), or
            d.execution.release() when it raised
    REPLAY: send d.replay (plus the replayed marker)
    REJECT: send an error built from d.rejection

The core owns the rules of docs/semantics.md, "Middleware", in one place:
coverage, required tenants and keys, key validation, the fingerprint,
heartbeats, not-final statuses, fail closed or open, waiting for a result,
and responses too large to store. Thread-safe; `keys` is a Client or an
idemkey.testing.InMemoryKeyService.
"""

import dataclasses
import enum
import math
import time
from typing import Any, Optional, Union

import grpc

from idemkey.client import new_attempt_id
from idemkey.errors import ServiceError
from idemkey.fingerprint import fingerprint
from idemkey.heartbeats import Heartbeats, duration
from idemkey.options import Event, EventKind, MiddlewareOptions
from idemkey.rules import key_error
from idemkey.v1 import idemkey_pb2 as pb

#: Statuses that mean the key service gave no answer (the table "What the
#: app's clients see"): 503 or, with fail_open, run unprotected.
NO_ANSWER = frozenset({
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL, grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.DATA_LOSS,
})


class Action(enum.Enum):
    BYPASS = "bypass"
    RUN = "run"
    REPLAY = "replay"
    REJECT = "reject"


class RejectReason(enum.Enum):
    """Why a request was refused: (HTTP status, problem type, gRPC code)."""

    MISSING_TENANT = (401, "missing-tenant", grpc.StatusCode.UNAUTHENTICATED)
    MISSING_KEY = (400, "missing-key", grpc.StatusCode.INVALID_ARGUMENT)
    MALFORMED_KEY = (400, "malformed-key", grpc.StatusCode.INVALID_ARGUMENT)
    IN_PROGRESS = (409, "in-progress", grpc.StatusCode.ABORTED)
    MISMATCH = (422, "key-reused", grpc.StatusCode.FAILED_PRECONDITION)
    UNAVAILABLE = (503, "unavailable", grpc.StatusCode.UNAVAILABLE)
    INTERNAL = (500, "internal", grpc.StatusCode.INTERNAL)

    @property
    def http_status(self) -> int:
        return self.value[0]

    @property
    def problem_type(self) -> str:
        return "urn:idemkey:" + self.value[1]

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return self.value[2]


@dataclasses.dataclass(frozen=True)
class Rejection:
    """A refusal, written for the app's client (never the service's text)."""

    reason: RejectReason
    title: str
    detail: str
    retry_after_seconds: int = 0


@dataclasses.dataclass(frozen=True)
class IncomingRequest:
    """The adapter's request. `target` is what the fingerprint covers
    beside method and body (HTTP: path and query as sent; empty: `route`);
    `route` is matched against excluded_routes; `key` None means no key."""

    method: str
    route: str
    target: Union[str, bytes] = b""
    tenant: str = ""
    key: Optional[str] = None
    body: bytes = b""


@dataclasses.dataclass
class Decision:
    action: Action = Action.BYPASS
    execution: Optional["Execution"] = None
    replay: Optional[pb.StoredResponse] = None
    rejection: Optional[Rejection] = None


def _reject(reason: RejectReason, title: str, detail: str,
            retry_after: int = 0) -> Decision:
    return Decision(Action.REJECT,
                    rejection=Rejection(reason, title, detail, retry_after))


def _timestamp_seconds(ts: Any) -> float:
    return ts.seconds + ts.nanos / 1e9


class IdempotencyCore:
    """Decides for every request of the routes it guards; see the module."""

    def __init__(self, keys: Any, options: Optional[MiddlewareOptions] = None
                 ) -> None:
        self.keys = keys
        self.options = options or MiddlewareOptions()
        self._heartbeats = Heartbeats(keys, self.options.lease,
                                      self.options.heartbeat_interval,
                                      self.options.observer,
                                      self.options.heartbeat_threads)

    def close(self) -> None:
        """Stops the heartbeat threads."""
        self._heartbeats.close()

    def notify(self, kind: EventKind, tenant: str, route: str,
               elapsed: float = 0.0,
               status: Optional[ServiceError] = None) -> None:
        """Tells the observer, if any."""
        if self.options.observer is not None:
            self.options.observer(Event(kind, tenant, route, elapsed, status))

    def screen(self, method: str, route: str, tenant: str,
               key: Optional[str]) -> Optional[Decision]:
        """The decision that needs neither the body nor the key service
        (bypass, missing tenant, missing or malformed key), or None when
        the request must be checked: adapters read the body only then."""
        o = self.options
        method_route = method + " " + route
        if method not in o.covered_methods or method_route in o.excluded_routes:
            self.notify(EventKind.BYPASS, tenant, route)
            return Decision()
        if not tenant:
            if not o.require_tenant:
                self.notify(EventKind.BYPASS, tenant, route)
                return Decision()
            self.notify(EventKind.MISSING_TENANT, tenant, route)
            return _reject(
                RejectReason.MISSING_TENANT, "Tenant required",
                method_route + " needs the caller's account (tenant); "
                "authenticate and send the request again")
        if key is None:
            if not o.require_key:
                self.notify(EventKind.BYPASS, tenant, route)
                return Decision()
            self.notify(EventKind.REJECTED_KEY, tenant, route)
            return _reject(
                RejectReason.MISSING_KEY, "Idempotency key required",
                method_route + " requires an Idempotency-Key; send a unique "
                "value (a UUID) and reuse it on retries")
        problem = key_error(key, o.max_key_bytes)
        if problem is not None:
            self.notify(EventKind.REJECTED_KEY, tenant, route)
            return _reject(RejectReason.MALFORMED_KEY,
                           "Malformed idempotency key",
                           "Idempotency-Key: " + problem)
        return None

    def begin(self, request: IncomingRequest) -> Decision:
        """What to do with `request` (blocking: it calls the key service,
        and with wait_for_result may wait that long)."""
        screened = self.screen(request.method, request.route, request.tenant,
                               request.key)
        if screened is not None:
            return screened
        o = self.options
        tenant, route, key = request.tenant, request.route, str(request.key)
        start = time.monotonic()
        fp = fingerprint(request.method, request.target or request.route,
                         request.body)
        reserve = pb.ReserveRequest(tenant=tenant, key=key, fingerprint=fp,
                                    attempt_id=new_attempt_id(),
                                    lease=duration(o.lease))
        if o.ttl > 0:
            reserve.ttl.CopyFrom(duration(o.ttl))
        wait_until = time.monotonic() + o.wait_for_result
        while True:
            try:
                r = self.keys.reserve(reserve)
            except ServiceError as e:
                return self._service_failed(tenant, route, start, e)
            elapsed = time.monotonic() - start
            if r.outcome == pb.OUTCOME_OWNER:
                self.notify(EventKind.RUN, tenant, route, elapsed)
                self._heartbeats.add(r.fencing_token, tenant, key)
                return Decision(Action.RUN, execution=Execution(
                    self, tenant, route, key, r.fencing_token))
            if r.outcome == pb.OUTCOME_COMPLETED:
                self.notify(EventKind.REPLAY, tenant, route, elapsed)
                return Decision(Action.REPLAY, replay=r.response)
            if r.outcome == pb.OUTCOME_MISMATCH:
                self.notify(EventKind.MISMATCH, tenant, route, elapsed)
                return _reject(
                    RejectReason.MISMATCH,
                    "Idempotency key reused for another request",
                    "this Idempotency-Key was first used with a different "
                    "method, target or body; use a new key for a new request")
            if r.outcome != pb.OUTCOME_IN_PROGRESS:
                self.notify(EventKind.SERVICE_ERROR, tenant, route, elapsed,
                            ServiceError(grpc.StatusCode.INTERNAL,
                                         "Reserve answered outcome %d"
                                         % r.outcome))
                return self._internal()
            lease_left = _timestamp_seconds(r.lease_expires_at) - time.time()
            now = time.monotonic()
            if now + o.wait_poll_interval <= wait_until:
                # Same attempt id: if the holder's lease lapses we take over.
                time.sleep(max(0.0, min(o.wait_poll_interval, lease_left)))
                continue
            self.notify(EventKind.IN_PROGRESS, tenant, route, elapsed)
            return _reject(
                RejectReason.IN_PROGRESS, "Request in progress",
                "a request with this Idempotency-Key is still running; retry "
                "after it finishes", max(1, math.ceil(lease_left)))

    def _service_failed(self, tenant: str, route: str, start: float,
                        e: ServiceError) -> Decision:
        elapsed = time.monotonic() - start
        if e.code in NO_ANSWER:
            if self.options.fail_open:
                self.notify(EventKind.FAIL_OPEN_RUN, tenant, route, elapsed, e)
                return Decision()
            self.notify(EventKind.UNAVAILABLE, tenant, route, elapsed, e)
            return _reject(
                RejectReason.UNAVAILABLE, "Idempotency service unavailable",
                "the request was not run because its idempotency key could "
                "not be checked; retry with the same key")
        # The service's own message is for the app's operators only.
        self.notify(EventKind.SERVICE_ERROR, tenant, route, elapsed, e)
        if e.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return _reject(
                RejectReason.UNAVAILABLE, "Idempotency service unavailable",
                "the request was not run because the idempotency service "
                "cannot take it now; retry later with the same key")
        return self._internal()

    @staticmethod
    def _internal() -> Decision:
        return _reject(
            RejectReason.INTERNAL, "Idempotency check failed",
            "the request was not run because its idempotency key could not "
            "be checked; the server's operators have been told")


class Execution:
    """The lease of one attempt while its handler runs: finish() or
    release() exactly once (heartbeats run until then)."""

    def __init__(self, core: IdempotencyCore, tenant: str, route: str,
                 key: str, token: int) -> None:
        self._core = core
        self.tenant = tenant
        self.route = route
        self.key = key
        self.fencing_token = token
        self.done = False

    def finish(self, response: pb.StoredResponse) -> Optional[ServiceError]:
        """Stores `response` for replays, or releases the key when its status
        is not final. Too large: stored without its body, then without its
        headers (body_omitted). Returns the service's error, if any; the
        response is sent either way. Not released on error: the handler
        ran, so its lease lapses instead."""
        core = self._core
        if response.status_code in core.options.not_final_statuses:
            return self.release()
        self.done = True
        core._heartbeats.remove(self.fencing_token)
        start = time.monotonic()
        stored = pb.StoredResponse()
        stored.CopyFrom(response)
        omitted = False
        error: Optional[ServiceError] = None
        for step in range(3):
            try:
                core.keys.complete(pb.CompleteRequest(
                    tenant=self.tenant, key=self.key,
                    fencing_token=self.fencing_token, response=stored))
                error = None
                break
            except ServiceError as e:
                error = e
                if e.code != grpc.StatusCode.RESOURCE_EXHAUSTED or step == 2:
                    break
            # Too large for the store or its receive limit: at most once
            # still holds, so store what fits rather than release.
            if step == 0:
                stored.ClearField("body")
            else:
                stored.ClearField("headers")
            stored.body_omitted = True
            omitted = True
        elapsed = time.monotonic() - start
        if error is not None:
            lost = error.code in (grpc.StatusCode.ABORTED,
                                  grpc.StatusCode.NOT_FOUND)
            core.notify(EventKind.LEASE_LOST if lost
                        else EventKind.FINISH_FAILED,
                        self.tenant, self.route, elapsed, error)
            return error
        core.notify(EventKind.BODY_OMITTED if omitted else EventKind.STORED,
                    self.tenant, self.route, elapsed)
        return None

    def release(self) -> Optional[ServiceError]:
        """Forgets the reservation so that a retry runs the handler again
        (a not-final status, or the handler raised)."""
        core = self._core
        self.done = True
        core._heartbeats.remove(self.fencing_token)
        start = time.monotonic()
        error: Optional[ServiceError] = None
        try:
            core.keys.release(pb.ReleaseRequest(
                tenant=self.tenant, key=self.key,
                fencing_token=self.fencing_token))
        except ServiceError as e:
            error = e
        core.notify(EventKind.RELEASED, self.tenant, self.route,
                    time.monotonic() - start, error)
        return error
