"""Client over in-process gRPC servers standing in for idemkeyd replicas:
which answers it retries, and how it spreads calls over several."""

import threading
from concurrent import futures
from typing import Callable, Iterator, List

import grpc
import pytest

from conftest import poll

from idemkey import Client, ServiceError
from idemkey.v1 import idemkey_pb2 as pb
from idemkey.v1 import idemkey_pb2_grpc as pb_grpc


class Replica(pb_grpc.KeyServiceServicer):
    """Answers Ping: first with the codes of `fail`, one per call, then OK;
    with `hold`, holds every call until the client goes away."""

    def __init__(self, fail: List[grpc.StatusCode], hold: bool) -> None:
        self.fail = list(fail)
        self.hold = hold
        self.calls = 0
        self.arrived = threading.Event()
        self._lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(4))
        pb_grpc.add_KeyServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def Ping(self, request, context):
        with self._lock:
            self.calls += 1
            code = self.fail.pop(0) if self.fail else None
        self.arrived.set()
        if self.hold:
            gone = threading.Event()
            context.add_callback(gone.set)
            gone.wait(10)
        if code is not None:
            context.abort(code, "injected")
        return pb.PingResponse()


@pytest.fixture
def replica() -> Iterator[Callable[..., Replica]]:
    """replica(fail=[codes], hold=False) starts one; all stop at the end."""
    started: List[Replica] = []

    def start(fail=(), hold=False) -> Replica:
        started.append(Replica(list(fail), hold))
        return started[-1]

    yield start
    for r in started:
        r.server.stop(None)


def client(address: str) -> Client:
    return Client(address, max_attempts=4, initial_backoff=0.001,
                  max_backoff=0.004)


def test_retries_cancelled_from_the_server(replica) -> None:
    # A stopping idemkeyd cancels the calls it had received but not started.
    r = replica(fail=[grpc.StatusCode.CANCELLED] * 2)
    with client("127.0.0.1:%d" % r.port) as c:
        c.ping()
    assert r.calls == 3


def test_gives_up_on_cancelled_after_max_attempts(replica) -> None:
    r = replica(fail=[grpc.StatusCode.CANCELLED] * 10)
    with client("127.0.0.1:%d" % r.port) as c:
        with pytest.raises(ServiceError) as e:
            c.ping()
    assert e.value.code == grpc.StatusCode.CANCELLED
    assert r.calls == 4


def test_a_call_cancelled_by_close_is_not_retried(replica) -> None:
    r = replica(hold=True)
    c = client("127.0.0.1:%d" % r.port)
    errors: List[Exception] = []

    def ping() -> None:
        try:
            c.ping()
        except Exception as e:  # any kind: the test thread checks which
            errors.append(e)

    t = threading.Thread(target=ping)
    t.start()
    assert r.arrived.wait(10)
    c.close()
    t.join(10)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ServiceError), errors
    assert errors[0].code == grpc.StatusCode.CANCELLED
    assert r.calls == 1


def test_spreads_calls_over_replicas(replica) -> None:
    one, two = replica(), replica()
    with client("ipv4:127.0.0.1:%d,127.0.0.1:%d" % (one.port, two.port)) as c:
        # Until both connections are up, the ones that are take every call.
        def both_called() -> bool:
            c.ping()
            return one.calls > 0 and two.calls > 0
        poll(both_called, 10, "both replicas to take a call")
        before = (one.calls, two.calls)
        for _ in range(10):
            c.ping()
        assert (one.calls - before[0], two.calls - before[1]) == (5, 5)
        # One gone: the other takes every call, and none fails.
        two.server.stop(None)
        before = (one.calls, two.calls)
        for _ in range(10):
            c.ping()
        assert (one.calls - before[0], two.calls - before[1]) == (10, 0)
