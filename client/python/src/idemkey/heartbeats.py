"""Renews the leases of running handlers from one background thread, so a
long handler keeps its key and a dead app server's lease lapses."""

import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

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
    """One thread beating every lease added, each `interval` seconds."""

    def __init__(self, keys: Any, lease: float, interval: float,
                 observer: Optional[Callable[[Event], None]]) -> None:
        self._keys = keys
        self._lease = lease
        self._interval = max(interval, 0.001)
        self._observer = observer
        self._cv = threading.Condition()
        self._leases: Dict[int, Tuple[str, str, float]] = {}  # by token
        self._stopping = False
        self._thread: Optional[threading.Thread] = None

    def add(self, token: int, tenant: str, key: str) -> None:
        """Beat `token`'s lease from `interval` from now on."""
        with self._cv:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="idemkey-heartbeats", daemon=True)
                self._thread.start()
            self._leases[token] = (tenant, key,
                                   time.monotonic() + self._interval)
            self._cv.notify_all()

    def remove(self, token: int) -> None:
        """Stop beating `token`'s lease."""
        with self._cv:
            self._leases.pop(token, None)

    def close(self) -> None:
        """Stop the thread (leases still held then lapse)."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        with self._cv:
            while not self._stopping:
                now = time.monotonic()
                due = [(t, l) for t, l in self._leases.items() if l[2] <= now]
                if not due:
                    nxt = min((l[2] for l in self._leases.values()),
                              default=None)
                    self._cv.wait(None if nxt is None else nxt - now)
                    continue
                for token, (tenant, key, _) in due:
                    self._leases[token] = (tenant, key, now + self._interval)
                self._cv.release()
                try:
                    for token, (tenant, key, _) in due:
                        self._beat(token, tenant, key)
                finally:
                    self._cv.acquire()

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
