"""Renews the leases of running handlers from a few background threads, so a
long handler keeps its key and a dead app server's lease lapses."""

import threading
import time
from typing import Any, Callable, Dict, List, Optional

import grpc

from idemkey.errors import ServiceError
from idemkey.options import Event, EventKind
from idemkey.v1 import idemkey_pb2 as pb


def duration(seconds_: float) -> Any:
    """A google.protobuf.Duration of `seconds_`."""
    d = pb.google_dot_protobuf_dot_duration__pb2.Duration()
    d.FromNanoseconds(int(round(seconds_ * 1e9)))
    return d


class Heartbeats:
    """`threads` threads beating every lease added, each `interval` seconds.

    The threads share one schedule: each beats the lease due first that no
    other is beating, so a beat the service is slow to answer (or never
    answers, until the client's deadline and retries give up) holds up one
    thread, not every other lease."""

    def __init__(self, keys: Any, lease: float, interval: float,
                 observer: Optional[Callable[[Event], None]],
                 threads: int = 4) -> None:
        self._keys = keys
        self._lease = lease
        self._interval = max(interval, 0.001)
        self._observer = observer
        self._thread_count = max(threads, 1)
        self._cv = threading.Condition()
        # By token: [tenant, key, due, beating]; a lease being beaten is
        # not due until its beat ends.
        self._leases: Dict[int, List[Any]] = {}
        self._stopping = False
        self._threads: List[threading.Thread] = []

    def add(self, token: int, tenant: str, key: str) -> None:
        """Beat `token`'s lease from `interval` from now on."""
        with self._cv:
            if not self._threads:
                for i in range(self._thread_count):
                    t = threading.Thread(target=self._run, daemon=True,
                                         name=f"idemkey-heartbeats-{i}")
                    t.start()
                    self._threads.append(t)
            beating = token in self._leases and self._leases[token][3]
            self._leases[token] = [tenant, key,
                                   time.monotonic() + self._interval, beating]
            self._cv.notify()

    def remove(self, token: int) -> None:
        """Stop beating `token`'s lease."""
        with self._cv:
            self._leases.pop(token, None)

    def close(self) -> None:
        """Stop the threads (leases still held then lapse)."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        for t in self._threads:
            t.join()

    def _run(self) -> None:
        with self._cv:
            while not self._stopping:
                idle = [(lease[2], token)
                        for token, lease in self._leases.items()
                        if not lease[3]]
                if not idle:
                    self._cv.wait()
                    continue
                due, token = min(idle)
                now = time.monotonic()
                if due > now:
                    self._cv.wait(due - now)
                    continue
                lease = self._leases[token]
                lease[2] = now + self._interval  # an interval after this beat
                lease[3] = True
                tenant, key = lease[0], lease[1]
                # Another lease due now goes to another thread at once.
                self._cv.notify()
                self._cv.release()
                try:
                    self._beat(token, tenant, key)
                finally:
                    self._cv.acquire()
                lease = self._leases.get(token)
                if lease is not None:
                    lease[3] = False

    def _beat(self, token: int, tenant: str, key: str) -> None:
        start = time.monotonic()
        try:
            self._keys.heartbeat(pb.HeartbeatRequest(
                tenant=tenant, key=key, fencing_token=token,
                lease=duration(self._lease)))
        except ServiceError as e:
            # A lease that is gone needs no more beats; a transient error
            # is retried at the next beat.
            gone = (grpc.StatusCode.ABORTED, grpc.StatusCode.NOT_FOUND,
                    grpc.StatusCode.FAILED_PRECONDITION)
            if e.code in gone:
                self.remove(token)
                if (self._observer is not None
                        and e.code != grpc.StatusCode.FAILED_PRECONDITION):
                    self._observer(Event(EventKind.LEASE_LOST, tenant, "",
                                         time.monotonic() - start, e))
