"""payments-grpc against the real idemkeyd, as tests/conformance drives it:
replay with its metadata, a stored error, other request, missing key,
throw-releases, ABORTED while in flight, 32 concurrent duplicates, fail
closed and open."""

import concurrent.futures
import sys
import uuid
from typing import Any, Callable, Iterator, Tuple

import grpc
import pytest

from conftest import EXAMPLES_DIR

sys.path.insert(0, EXAMPLES_DIR)
import payments_pb2  # noqa: E402
import payments_pb2_grpc  # noqa: E402

APP = "payments_grpc.py"
Request = payments_pb2.CreateChargeRequest
# (code, Charge or None, details, initial metadata, trailing metadata)
Answer = Tuple[grpc.StatusCode, Any, str, dict, dict]


@pytest.fixture
def start_app(start_example) -> Iterator[Callable[..., Callable[..., Answer]]]:
    """start_app(*flags) starts an app and returns charge(request, key,
    **metadata) calling its CreateCharge as tenant "Acme Corp"."""
    channels = []

    def start(*flags: str) -> Callable[..., Answer]:
        channel = grpc.insecure_channel(
            "127.0.0.1:%d" % start_example(APP, *flags))
        channels.append(channel)
        stub = payments_pb2_grpc.PaymentsStub(channel)

        def charge(request: Request, key: str, **metadata: str) -> Answer:
            md = [("x-org-id", "Acme Corp"), *metadata.items()]
            if key:
                md.append(("idempotency-key", key))
            try:
                reply, call = stub.CreateCharge.with_call(
                    request, metadata=md, timeout=20)
                return (grpc.StatusCode.OK, reply, "",
                        dict(call.initial_metadata()),
                        dict(call.trailing_metadata()))
            except grpc.RpcError as e:
                return (e.code(), None, e.details(),
                        dict(e.initial_metadata()),
                        dict(e.trailing_metadata()))

        return charge

    yield start
    # Closed before the apps stop: an idle connection delays a gRPC
    # server's graceful shutdown by seconds.
    for channel in channels:
        channel.close()


def test_replay_errors_and_throw(start_app) -> None:
    charge = start_app()
    key, request = str(uuid.uuid4()), Request(amount=1000, currency="EUR")
    c1, r1, _, m1, _ = charge(request, key)
    c2, r2, _, m2, _ = charge(request, key)
    assert (c1, c2) == (grpc.StatusCode.OK, grpc.StatusCode.OK)
    assert r1 == r2 == payments_pb2.Charge(id="ch_1", amount=1000,
                                           currency="EUR")
    assert m1 == {"x-charge-id": "ch_1"}
    assert m2 == {"x-charge-id": "ch_1", "idempotency-replayed": "true"}
    assert charge(Request(amount=2), key)[0] == \
        grpc.StatusCode.FAILED_PRECONDITION
    assert charge(request, "")[0] == grpc.StatusCode.INVALID_ARGUMENT

    zero = str(uuid.uuid4())
    first, again = charge(Request(), zero), charge(Request(), zero)
    assert first[0] == again[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert first[2] == again[2] == "amount must be positive, not 0"
    assert "idempotency-replayed" not in first[3]
    assert again[3]["idempotency-replayed"] == "true"

    thrown = str(uuid.uuid4())
    code, _, details, _, _ = charge(request, thrown, **{"x-fail": "throw"})
    assert code == grpc.StatusCode.INTERNAL
    assert details == ("/idemkey.examples.Payments/CreateCharge failed: "
                       "the charge failed (x-fail: throw)")
    # The throw charged nothing and released the key.
    assert charge(request, thrown)[1].id == "ch_2"


def test_in_flight_and_concurrent(start_app) -> None:
    charge = start_app("--charge_delay=300ms")
    key = str(uuid.uuid4())
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda _: charge(Request(amount=5), key),
                                range(32)))
    done = [a for a in answers if a[0] == grpc.StatusCode.OK]
    busy = [a for a in answers if a[0] == grpc.StatusCode.ABORTED]
    assert len(done) + len(busy) == 32 and done
    # Later ones replay the first answer: still only ch_1.
    assert {a[1].id for a in done} == {"ch_1"}
    assert all(int(a[4]["retry-after"]) >= 1 for a in busy)


def test_fail_closed_and_open(start_app) -> None:
    closed = start_app("--idemkey=127.0.0.1:1")
    assert closed(Request(amount=1), str(uuid.uuid4()))[0] == \
        grpc.StatusCode.UNAVAILABLE
    opened = start_app("--idemkey=127.0.0.1:1", "--fail_open")
    assert opened(Request(amount=1), str(uuid.uuid4()))[1].id == "ch_1"
