"""IdempotencyCore's decisions (docs/semantics.md, "What the app's clients
see") over the in-memory service."""

import threading
import time

import grpc
import pytest

from conftest import poll

from idemkey import (Action, EventKind, IdempotencyCore, IncomingRequest,
                     MiddlewareOptions, RejectReason)
from idemkey.client import call_with_retries
from idemkey.testing import InMemoryKeyService
from idemkey.v1 import idemkey_pb2 as pb


def make(**options):
    keys = InMemoryKeyService()
    events = []
    core = IdempotencyCore(keys, MiddlewareOptions(
        observer=events.append, **options))
    return keys, core, events


def req(key="k1", body=b"{}", method="POST", route="/v1/charges",
        target=b"", tenant="acme"):
    return IncomingRequest(method, route, target, tenant, key, body)


def test_bypasses() -> None:
    _, core, events = make(excluded_routes={"POST /v1/auth/login"})
    assert core.begin(req(method="GET")).action == Action.BYPASS
    assert core.begin(req(route="/v1/auth/login")).action == Action.BYPASS
    assert core.begin(req(method="post")).action == Action.BYPASS
    assert core.begin(req(tenant="")).action == Action.BYPASS
    assert core.begin(req(key=None)).action == Action.BYPASS
    assert [e.kind for e in events] == [EventKind.BYPASS] * 5


@pytest.mark.parametrize("key,reason", [
    (None, RejectReason.MISSING_KEY), ("", RejectReason.MALFORMED_KEY),
    ("a b", RejectReason.MALFORMED_KEY), ("x" * 257, RejectReason.MALFORMED_KEY),
    ("é", RejectReason.MALFORMED_KEY)])
def test_key_rejections(key, reason) -> None:
    _, core, _ = make(require_key=True)
    d = core.begin(req(key=key))
    assert d.action == Action.REJECT and d.rejection.reason == reason
    assert d.rejection.reason.http_status == 400


def test_missing_tenant() -> None:
    _, core, _ = make(require_tenant=True)
    d = core.begin(req(tenant=""))
    assert d.rejection.reason == RejectReason.MISSING_TENANT
    assert d.rejection.reason.problem_type == "urn:idemkey:missing-tenant"


def test_run_store_replay_mismatch_in_progress() -> None:
    keys, core, events = make()
    d = core.begin(req())
    assert d.action == Action.RUN
    busy = core.begin(req())
    assert busy.rejection.reason == RejectReason.IN_PROGRESS
    assert 1 <= busy.rejection.retry_after_seconds <= 30
    assert d.execution.finish(pb.StoredResponse(status_code=201, body=b"x")) \
        is None
    replay = core.begin(req())
    assert replay.action == Action.REPLAY and replay.replay.body == b"x"
    other = core.begin(req(body=b"{1}"))
    assert other.rejection.reason == RejectReason.MISMATCH
    # Another query string is another request.
    assert core.begin(req(target=b"/v1/charges?a=1")).rejection.reason == \
        RejectReason.MISMATCH
    kinds = [e.kind for e in events]
    assert kinds == [EventKind.RUN, EventKind.IN_PROGRESS, EventKind.STORED,
                     EventKind.REPLAY, EventKind.MISMATCH, EventKind.MISMATCH]


def test_not_final_status_and_release_let_a_retry_run() -> None:
    _, core, _ = make()
    d = core.begin(req())
    d.execution.finish(pb.StoredResponse(status_code=503))
    d = core.begin(req())
    assert d.action == Action.RUN
    d.execution.release()
    assert core.begin(req()).action == Action.RUN


@pytest.mark.parametrize("code", [
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL, grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.DATA_LOSS])
def test_no_answer_fails_closed_or_open(code) -> None:
    keys, core, events = make()
    keys.set_failure(code, "secret service text")
    d = core.begin(req())
    assert d.rejection.reason == RejectReason.UNAVAILABLE
    assert "secret" not in d.rejection.detail
    assert events[-1].service_status.code == code
    keys2, open_core, _ = make(fail_open=True)
    keys2.set_failure(code)
    assert open_core.begin(req()).action == Action.BYPASS


@pytest.mark.parametrize("code,reason", [
    (grpc.StatusCode.RESOURCE_EXHAUSTED, RejectReason.UNAVAILABLE),
    (grpc.StatusCode.PERMISSION_DENIED, RejectReason.INTERNAL),
    (grpc.StatusCode.INVALID_ARGUMENT, RejectReason.INTERNAL),
    (grpc.StatusCode.NOT_FOUND, RejectReason.INTERNAL)])
def test_service_verdicts(code, reason) -> None:
    keys, core, events = make(fail_open=True)
    keys.set_failure(code, "secret")
    d = core.begin(req())
    assert d.rejection.reason == reason and "secret" not in d.rejection.detail
    assert events[-1].kind == EventKind.SERVICE_ERROR


def test_too_large_is_stored_without_body() -> None:
    keys = InMemoryKeyService(max_response_bytes=1024)
    events = []
    core = IdempotencyCore(keys, MiddlewareOptions(observer=events.append))
    d = core.begin(req())
    big = pb.StoredResponse(status_code=200, body=b"x" * 2000)
    big.headers.add(name="A", value=b"1")
    assert d.execution.finish(big) is None
    r = core.begin(req())
    assert r.replay.body_omitted and r.replay.body == b""
    assert [h.name for h in r.replay.headers] == ["A"]
    assert events[-2].kind == EventKind.BODY_OMITTED


def test_heartbeats_keep_the_lease() -> None:
    keys, core, _ = make(lease=1.0, heartbeat_interval=0.05)
    core.begin(req())
    poll(lambda: keys.calls.get("Heartbeat", 0) >= 2, 5, "heartbeats")
    core.close()


def test_a_heartbeat_that_hangs_does_not_hold_up_the_other_leases() -> None:
    keys = InMemoryKeyService()
    held, answer = threading.Event(), threading.Event()

    class HeldHeartbeats:
        """Never answers the heartbeats of key "stuck" (until `answer`)."""

        def __getattr__(self, name):
            return getattr(keys, name)

        def heartbeat(self, request):
            if request.key == "stuck":
                held.set()
                answer.wait()
            return keys.heartbeat(request)

    core = IdempotencyCore(HeldHeartbeats(), MiddlewareOptions(
        lease=1.0, heartbeat_interval=0.05))
    stuck = core.begin(req("stuck"))
    assert held.wait(5)
    others = {k: core.begin(req(k)) for k in ("k0", "k1", "k2")}
    time.sleep(2.5)  # two and a half leases
    answer.set()
    for key, d in others.items():
        assert d.execution.finish(pb.StoredResponse(status_code=201)) is None, key
    # The unanswered lease did lapse: its Complete is refused.
    err = stuck.execution.finish(pb.StoredResponse(status_code=201))
    assert err.code == grpc.StatusCode.ABORTED
    core.close()


def test_lost_lease_is_reported_on_finish() -> None:
    keys, core, events = make(lease=1.0)
    d = core.begin(req())
    keys.advance_clock(2)
    assert core.begin(req()).action == Action.RUN  # another attempt took over
    err = d.execution.finish(pb.StoredResponse(status_code=201))
    assert err.code == grpc.StatusCode.ABORTED
    assert events[-1].kind == EventKind.LEASE_LOST


def test_wait_for_result_replays() -> None:
    _, core, _ = make(wait_for_result=5.0)
    d = core.begin(req())
    result = {}
    t = threading.Thread(target=lambda: result.update(d=core.begin(req())))
    t.start()
    d.execution.finish(pb.StoredResponse(status_code=201, body=b"first"))
    t.join(10)
    assert result["d"].action == Action.REPLAY
    assert result["d"].replay.body == b"first"


def test_wait_for_result_runs_after_a_release() -> None:
    _, core, _ = make(wait_for_result=5.0)
    d = core.begin(req())
    result = {}
    t = threading.Thread(target=lambda: result.update(d=core.begin(req())))
    t.start()
    d.execution.release()
    t.join(10)
    assert result["d"].action == Action.RUN


def test_retries_unavailable_with_backoff() -> None:
    attempts, sleeps = [], []

    class Unavailable(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.UNAVAILABLE

        def details(self):
            return "down"

    def attempt():
        attempts.append(1)
        if len(attempts) < 3:
            raise Unavailable()
        return "ok"

    assert call_with_retries(attempt, 4, 0.05, 1.0, sleeps.append) == "ok"
    assert len(attempts) == 3 and 0.025 <= sleeps[0] <= 0.05
    assert 0.05 <= sleeps[1] <= 0.1
    attempts.clear()
    with pytest.raises(Exception) as e:
        call_with_retries(lambda: attempt() if False else (_ for _ in ()).throw(
            Unavailable()), 4, 0.01, 0.02, sleeps.append)
    assert e.value.code == grpc.StatusCode.UNAVAILABLE
