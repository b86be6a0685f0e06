"""An in-memory key service with idemkeyd's state machine, for tests.

It answers like idemkeyd (docs/semantics.md, "Transition table": outcomes,
leases, fencing tokens, validation, the response size limit) and can stand
in for a Client in IdempotencyCore. Its clock is the wall clock plus an
offset that advance_clock() moves, so leases can lapse without waiting.
Nothing outlives the object. Thread-safe.

    keys = InMemoryKeyService()
    core = IdempotencyCore(keys, MiddlewareOptions())
    keys.advance_clock(31)       # every 30 s lease lapses
    keys.set_failure(grpc.StatusCode.UNAVAILABLE)   # unreachable
"""

import dataclasses
import threading
import time
from typing import Dict, Optional

import grpc

from idemkey.errors import ServiceError
from idemkey.rules import key_error, printable_error, tenant_name_error
from idemkey.v1 import idemkey_pb2 as pb

_IN_PROGRESS, _COMPLETED = pb.STATE_IN_PROGRESS, pb.STATE_COMPLETED


@dataclasses.dataclass
class _Record:
    state: int
    fingerprint: bytes
    attempt_id: str
    token: int
    lease_expires_ms: int
    created_ms: int
    expires_ms: int
    ttl_ms: int
    response: Optional[pb.StoredResponse] = None
    completed_ms: int = 0


def _ms(d: "pb.google_dot_protobuf_dot_duration__pb2.Duration") -> int:
    return d.seconds * 1000 + d.nanos // 1_000_000


def _timestamp(ms: int) -> "pb.google_dot_protobuf_dot_timestamp__pb2.Timestamp":
    ts = pb.google_dot_protobuf_dot_timestamp__pb2.Timestamp()
    ts.FromMilliseconds(ms)
    return ts


def _invalid(message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, message)


class InMemoryKeyService:
    """KeyService in memory (reserve, complete, release, heartbeat, lookup),
    raising ServiceError like Client."""

    def __init__(self, max_response_bytes: int = 4 << 20,
                 max_tenants: int = 1000, auto_create_tenants: bool = True,
                 default_lease_ms: int = 30_000, max_lease_ms: int = 3_600_000,
                 default_ttl_ms: int = 86_400_000, min_ttl_ms: int = 60_000,
                 max_ttl_ms: int = 30 * 86_400_000) -> None:
        self.max_response_bytes = max_response_bytes
        self.max_tenants = max_tenants
        self.auto_create_tenants = auto_create_tenants
        self._lease = (default_lease_ms, 1000, max_lease_ms)
        self._ttl = (default_ttl_ms, min_ttl_ms, max_ttl_ms)
        self._lock = threading.Lock()
        self._tenants: Dict[str, Dict[str, _Record]] = {}
        self._last_token = 0
        self._offset_ms = 0
        self._failure: Optional[ServiceError] = None
        self.calls: Dict[str, int] = {}

    # Test controls.
    def now_ms(self) -> int:
        """The service's time, in Unix milliseconds."""
        return int(time.time() * 1000) + self._offset_ms

    def advance_clock(self, seconds: float) -> None:
        """Moves the service's clock forward (leases and records lapse)."""
        with self._lock:
            self._offset_ms += int(seconds * 1000)

    def set_failure(self, code: Optional[grpc.StatusCode],
                    message: str = "in-memory key service set to fail"
                    ) -> None:
        """While set, every call raises ServiceError(code); None: normal."""
        with self._lock:
            self._failure = None if code is None else ServiceError(code,
                                                                   message)

    def create_tenant(self, name: str) -> None:
        """Creates a tenant (for auto_create_tenants=False)."""
        with self._lock:
            self._tenants.setdefault(name, {})

    # KeyService.
    def reserve(self, request: pb.ReserveRequest) -> pb.ReserveResponse:
        """Reserve, per the transition table."""
        with self._lock:
            self._enter("Reserve")
            self._check_tenant_key(request.tenant, request.key)
            if len(request.fingerprint) != 32:
                raise _invalid("fingerprint is %d bytes; it must be the "
                               "32-byte SHA-256 of the request"
                               % len(request.fingerprint))
            problem = printable_error("attempt_id", request.attempt_id, 1, 128)
            if problem:
                raise _invalid(problem)
            lease = self._resolve("lease", _ms(request.lease), *self._lease)
            ttl = self._resolve("ttl", _ms(request.ttl), *self._ttl)
            records = self._records(request.tenant, create=True)
            now = self.now_ms()
            r = self._live(records, request.key, now)
            if r is None:
                r = _Record(_IN_PROGRESS, request.fingerprint,
                            request.attempt_id, 0, 0, now, now + ttl, ttl)
                records[request.key] = r
                return self._take(r, request.attempt_id, lease, now, True)
            if r.fingerprint != request.fingerprint:
                return pb.ReserveResponse(outcome=pb.OUTCOME_MISMATCH)
            if r.state == _COMPLETED:
                return pb.ReserveResponse(outcome=pb.OUTCOME_COMPLETED,
                                          response=r.response,
                                          expires_at=_timestamp(r.expires_ms))
            if r.attempt_id == request.attempt_id:
                if r.lease_expires_ms > now:
                    return self._owner(r)
                return self._take(r, request.attempt_id, lease, now, False)
            if r.lease_expires_ms > now:
                return pb.ReserveResponse(
                    outcome=pb.OUTCOME_IN_PROGRESS,
                    lease_expires_at=_timestamp(r.lease_expires_ms),
                    expires_at=_timestamp(r.expires_ms))
            return self._take(r, request.attempt_id, lease, now, True)

    def complete(self, request: pb.CompleteRequest) -> pb.CompleteResponse:
        """Complete; RESOURCE_EXHAUSTED (nothing stored, lease kept) over
        max_response_bytes."""
        with self._lock:
            self._enter("Complete")
            self._check_tenant_key(request.tenant, request.key)
            records = self._records(request.tenant)
            now = self.now_ms()
            r = self._live(records, request.key, now)
            if (r is not None and r.state == _COMPLETED
                    and r.token == request.fencing_token):
                return pb.CompleteResponse(expires_at=_timestamp(r.expires_ms))
            r = self._holder(r, request, now)
            size = request.response.ByteSize()
            if size > self.max_response_bytes:
                raise ServiceError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "response is %d bytes encoded; the limit is %d bytes"
                    % (size, self.max_response_bytes))
            stored = pb.StoredResponse()
            stored.CopyFrom(request.response)
            r.state, r.response, r.completed_ms = _COMPLETED, stored, now
            r.lease_expires_ms = 0
            r.expires_ms = now + r.ttl_ms
            return pb.CompleteResponse(expires_at=_timestamp(r.expires_ms))

    def release(self, request: pb.ReleaseRequest) -> pb.ReleaseResponse:
        """Release: the record becomes absent."""
        with self._lock:
            self._enter("Release")
            self._check_tenant_key(request.tenant, request.key)
            records = self._records(request.tenant)
            now = self.now_ms()
            self._holder(self._live(records, request.key, now), request, now)
            del records[request.key]
            return pb.ReleaseResponse()

    def heartbeat(self, request: pb.HeartbeatRequest) -> pb.HeartbeatResponse:
        """Heartbeat: the lease ends `lease` from now."""
        with self._lock:
            self._enter("Heartbeat")
            self._check_tenant_key(request.tenant, request.key)
            lease = self._resolve("lease", _ms(request.lease), *self._lease)
            records = self._records(request.tenant)
            now = self.now_ms()
            r = self._holder(self._live(records, request.key, now), request,
                             now)
            r.lease_expires_ms = now + lease
            r.expires_ms = max(r.expires_ms, r.lease_expires_ms)
            return pb.HeartbeatResponse(
                lease_expires_at=_timestamp(r.lease_expires_ms))

    def lookup(self, tenant: str, key: str) -> pb.Record:
        """The live record, as Client.lookup answers."""
        with self._lock:
            self._enter("Lookup")
            self._check_tenant_key(tenant, key)
            r = self._live(self._records(tenant), key, self.now_ms())
            if r is None:
                raise self._no_record(tenant, key)
            out = pb.Record(key=key, state=r.state, fingerprint=r.fingerprint,
                            fencing_token=r.token, attempt_id=r.attempt_id,
                            created_at=_timestamp(r.created_ms),
                            expires_at=_timestamp(r.expires_ms))
            out.ttl.FromMilliseconds(r.ttl_ms)
            if r.state == _IN_PROGRESS:
                out.lease_expires_at.CopyFrom(_timestamp(r.lease_expires_ms))
            else:
                out.response.CopyFrom(r.response)
                out.completed_at.CopyFrom(_timestamp(r.completed_ms))
            return out

    def ping(self) -> None:
        with self._lock:
            self._enter("Ping")

    # Internals (called with the lock held).
    def _enter(self, call: str) -> None:
        self.calls[call] = self.calls.get(call, 0) + 1
        if self._failure is not None:
            raise self._failure

    @staticmethod
    def _check_tenant_key(tenant: str, key: str) -> None:
        problem = tenant_name_error(tenant) or key_error(key)
        if problem:
            raise _invalid(problem)

    @staticmethod
    def _resolve(field: str, requested: int, default: int, low: int,
                 high: int) -> int:
        if requested == 0:
            return default
        if not low <= requested <= high:
            raise _invalid("%s of %d ms is out of range; it must be between "
                           "%d ms and %d ms" % (field, requested, low, high))
        return requested

    def _records(self, tenant: str, create: bool = False
                 ) -> Dict[str, _Record]:
        records = self._tenants.get(tenant)
        if records is not None:
            return records
        if not create or not self.auto_create_tenants:
            raise ServiceError(grpc.StatusCode.NOT_FOUND,
                               "tenant \"%s\" does not exist" % tenant)
        if len(self._tenants) >= self.max_tenants:
            raise ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                               "the tenant cap (%d) is reached"
                               % self.max_tenants)
        return self._tenants.setdefault(tenant, {})

    @staticmethod
    def _live(records: Dict[str, _Record], key: str, now: int
              ) -> Optional[_Record]:
        r = records.get(key)
        if r is not None and r.expires_ms <= now:
            del records[key]
            return None
        return r

    def _take(self, r: _Record, attempt_id: str, lease: int, now: int,
              new_token: bool) -> pb.ReserveResponse:
        if new_token:
            self._last_token += 1
            r.token = self._last_token
        r.attempt_id = attempt_id
        r.lease_expires_ms = now + lease
        r.expires_ms = max(r.expires_ms, r.lease_expires_ms)
        return self._owner(r)

    @staticmethod
    def _owner(r: _Record) -> pb.ReserveResponse:
        return pb.ReserveResponse(
            outcome=pb.OUTCOME_OWNER, fencing_token=r.token,
            lease_expires_at=_timestamp(r.lease_expires_ms),
            expires_at=_timestamp(r.expires_ms))

    @staticmethod
    def _no_record(tenant: str, key: str) -> ServiceError:
        return ServiceError(
            grpc.StatusCode.NOT_FOUND,
            "no record for key \"%s\" of tenant \"%s\": it was never "
            "reserved, was released or deleted, or has expired"
            % (key, tenant))

    def _holder(self, r: Optional[_Record], request: object, now: int
                ) -> _Record:
        tenant, key = request.tenant, request.key  # type: ignore[attr-defined]
        token = request.fencing_token  # type: ignore[attr-defined]
        if r is None:
            raise self._no_record(tenant, key)
        if r.token != token:
            raise ServiceError(
                grpc.StatusCode.ABORTED,
                "fencing token %d no longer holds the lease of key \"%s\": "
                "another attempt took over" % (token, key))
        if r.state == _COMPLETED:
            raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION,
                               "key \"%s\" is already completed" % key)
        if r.lease_expires_ms <= now:
            raise ServiceError(grpc.StatusCode.ABORTED,
                               "the lease of fencing token %d expired" % token)
        return r


__all__ = ["InMemoryKeyService"]
