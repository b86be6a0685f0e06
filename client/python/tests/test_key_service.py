"""The state machine, run against InMemoryKeyService and the real idemkeyd
(the same cases), so the in-memory double cannot drift from the server."""

import time
import uuid

import grpc
import pytest

from conftest import poll

from idemkey import Client, ServiceError, fingerprint, new_attempt_id
from idemkey.heartbeats import duration
from idemkey.testing import InMemoryKeyService
from idemkey.v1 import idemkey_pb2 as pb

FP = fingerprint("POST", "/v1/x", b"{}")
OTHER = fingerprint("POST", "/v1/x", b"{1}")


@pytest.fixture(params=["memory", "idemkeyd"])
def keys(request):
    if request.param == "memory":
        yield InMemoryKeyService()
    else:
        client = Client(request.getfixturevalue("idemkeyd"))
        yield client
        client.close()


def lapse(keys, response) -> None:
    """Lets the lease in `response` lapse: the in-memory clock jumps, the
    real service is waited for (until the lease end has passed)."""
    end = response.lease_expires_at.ToMilliseconds() / 1000.0
    if isinstance(keys, InMemoryKeyService):
        keys.advance_clock(end - keys.now_ms() / 1000.0 + 0.001)
    else:
        poll(lambda: time.time() > end + 0.05, 5, "the lease to lapse")


def reserve(keys, key, fp=FP, attempt=None, lease=1.0):
    return keys.reserve(pb.ReserveRequest(
        tenant="pytest", key=key, fingerprint=fp,
        attempt_id=attempt or new_attempt_id(), lease=duration(lease)))


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(ServiceError) as e:
        call()
    return e.value.code


def test_owner_then_in_progress_then_completed(keys) -> None:
    key = str(uuid.uuid4())
    r = reserve(keys, key, lease=30)
    assert r.outcome == pb.OUTCOME_OWNER and r.fencing_token > 0
    again = reserve(keys, key)
    assert again.outcome == pb.OUTCOME_IN_PROGRESS
    assert again.lease_expires_at.seconds > 0
    assert reserve(keys, key, OTHER).outcome == pb.OUTCOME_MISMATCH
    stored = pb.StoredResponse(status_code=201, body=b"ok")
    stored.headers.add(name="Location", value=b"/x")
    keys.complete(pb.CompleteRequest(tenant="pytest", key=key,
                                     fencing_token=r.fencing_token,
                                     response=stored))
    done = reserve(keys, key)
    assert done.outcome == pb.OUTCOME_COMPLETED and done.response == stored
    assert reserve(keys, key, OTHER).outcome == pb.OUTCOME_MISMATCH
    # A retried Complete is OK and keeps the first response.
    keys.complete(pb.CompleteRequest(
        tenant="pytest", key=key, fencing_token=r.fencing_token,
        response=pb.StoredResponse(status_code=500)))
    assert reserve(keys, key).response == stored
    assert code_of(lambda: keys.release(pb.ReleaseRequest(
        tenant="pytest", key=key, fencing_token=r.fencing_token))) == \
        grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(lambda: keys.heartbeat(pb.HeartbeatRequest(
        tenant="pytest", key=key, fencing_token=r.fencing_token + 1000))) == \
        grpc.StatusCode.ABORTED
    assert keys.lookup("pytest", key).state == pb.STATE_COMPLETED


def test_same_attempt_gets_same_token(keys) -> None:
    key, attempt = str(uuid.uuid4()), new_attempt_id()
    first = reserve(keys, key, attempt=attempt)
    second = reserve(keys, key, attempt=attempt)
    assert second.outcome == pb.OUTCOME_OWNER
    assert second.fencing_token == first.fencing_token


def test_release_makes_the_key_absent(keys) -> None:
    key = str(uuid.uuid4())
    r = reserve(keys, key)
    keys.release(pb.ReleaseRequest(tenant="pytest", key=key,
                                   fencing_token=r.fencing_token))
    assert code_of(lambda: keys.lookup("pytest", key)) == \
        grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: keys.release(pb.ReleaseRequest(
        tenant="pytest", key=key, fencing_token=r.fencing_token))) == \
        grpc.StatusCode.NOT_FOUND
    assert reserve(keys, key).outcome == pb.OUTCOME_OWNER


def test_takeover_after_lapse_fences_the_old_token(keys) -> None:
    key = str(uuid.uuid4())
    old = reserve(keys, key, lease=1)
    lapse(keys, old)
    assert code_of(lambda: keys.heartbeat(pb.HeartbeatRequest(
        tenant="pytest", key=key, fencing_token=old.fencing_token))) == \
        grpc.StatusCode.ABORTED
    new = reserve(keys, key)
    assert new.outcome == pb.OUTCOME_OWNER
    assert new.fencing_token > old.fencing_token
    assert code_of(lambda: keys.complete(pb.CompleteRequest(
        tenant="pytest", key=key, fencing_token=old.fencing_token,
        response=pb.StoredResponse(status_code=200)))) == \
        grpc.StatusCode.ABORTED
    beat = keys.heartbeat(pb.HeartbeatRequest(
        tenant="pytest", key=key, fencing_token=new.fencing_token,
        lease=duration(30)))
    assert beat.lease_expires_at.seconds >= new.lease_expires_at.seconds


def test_mismatch_even_after_lapse(keys) -> None:
    key = str(uuid.uuid4())
    r = reserve(keys, key, lease=1)
    lapse(keys, r)
    assert reserve(keys, key, OTHER).outcome == pb.OUTCOME_MISMATCH


def test_validation(keys) -> None:
    bad = [
        pb.ReserveRequest(tenant="Bad Tenant", key="k", fingerprint=FP,
                          attempt_id="a"),
        pb.ReserveRequest(tenant="pytest", key="has space", fingerprint=FP,
                          attempt_id="a"),
        pb.ReserveRequest(tenant="pytest", key="k", fingerprint=b"short",
                          attempt_id="a"),
        pb.ReserveRequest(tenant="pytest", key="k", fingerprint=FP,
                          attempt_id=""),
        pb.ReserveRequest(tenant="pytest", key="k", fingerprint=FP,
                          attempt_id="a", lease=duration(0.5)),
        pb.ReserveRequest(tenant="pytest", key="k", fingerprint=FP,
                          attempt_id="a", ttl=duration(10)),
    ]
    for request in bad:
        assert code_of(lambda: keys.reserve(request)) == \
            grpc.StatusCode.INVALID_ARGUMENT, request


def test_too_large_response_keeps_the_lease(keys) -> None:
    key = str(uuid.uuid4())
    r = reserve(keys, key, lease=30)
    big = pb.StoredResponse(status_code=200, body=b"x" * (4 << 20))
    assert code_of(lambda: keys.complete(pb.CompleteRequest(
        tenant="pytest", key=key, fencing_token=r.fencing_token,
        response=big))) == grpc.StatusCode.RESOURCE_EXHAUSTED
    small = pb.StoredResponse(status_code=200, body_omitted=True)
    keys.complete(pb.CompleteRequest(tenant="pytest", key=key,
                                     fencing_token=r.fencing_token,
                                     response=small))
    assert reserve(keys, key).response.body_omitted
