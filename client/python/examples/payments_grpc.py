#!/usr/bin/python3
"""payments-grpc: a small gRPC payments API protected by idemkey.

The Python rewrite of client/cpp/examples/payments_grpc.cc, following the
payments-grpc contract of tests/conformance/README.md. Payments/CreateCharge
(proto/idemkey/examples/payments.proto) creates a charge; a client that
retries with the same `idempotency-key` metadata and request gets the first
charge back (with `idempotency-replayed: true`) instead of a second one. The
tenant is the `x-org-id` metadata; calls without it are not protected.

A charge of a non-positive amount answers INVALID_ARGUMENT, which is stored
and replayed like any answer. --charge_delay makes each charge take that
long (to see ABORTED and lease heartbeats). A call with metadata
`x-fail: throw` raises after the delay, without charging: the interceptor
releases the key and the call ends INTERNAL. SIGTERM or SIGINT stops the
server after the calls in flight.

    /usr/bin/python3 client/python/examples/payments_grpc.py \\
        --listen_port=50052 --idemkey=127.0.0.1:50051
"""

import itertools
import os
import sys
import threading
import time
from concurrent import futures
from typing import List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "src"))

import grpc  # noqa: E402

import example_flags  # noqa: E402
import payments_pb2  # noqa: E402
import payments_pb2_grpc  # noqa: E402
from idemkey import IdempotencyCore  # noqa: E402
from idemkey.grpc_server import (IdempotencyInterceptor,  # noqa: E402
                                 default_grpc_options)

#: Calls served at once; more wait for a thread (the conformance suite
#: sends 32 at once).
MAX_WORKERS = 64


class Payments(payments_pb2_grpc.PaymentsServicer):
    """CreateCharge, numbering this process's charges ch_1, ch_2, ..."""

    def __init__(self, charge_delay: float) -> None:
        self._delay = charge_delay
        self._charges = itertools.count(1)
        self._lock = threading.Lock()

    def CreateCharge(self, request: payments_pb2.CreateChargeRequest,
                     context: grpc.ServicerContext) -> payments_pb2.Charge:
        if request.amount <= 0:
            # Raises; the interceptor records the answer and stores it.
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "amount must be positive, not %d" % request.amount)
        time.sleep(self._delay)
        if _metadata(context, "x-fail") == "throw":
            raise RuntimeError("the charge failed (x-fail: throw)")
        with self._lock:
            charge_id = "ch_%d" % next(self._charges)
        # The interceptor's reply metadata: stored with the answer, so a
        # replay carries it too.
        context.send_initial_metadata((("x-charge-id", charge_id),))
        return payments_pb2.Charge(id=charge_id, amount=request.amount,
                                   currency=request.currency,
                                   description=request.description)


def _metadata(context: grpc.ServicerContext, name: str) -> Optional[str]:
    """The first value of the call's metadata `name`, if any."""
    return next((value for key, value in context.invocation_metadata() or ()
                 if key == name), None)


def main(argv: List[str]) -> int:
    flags = example_flags.parse_flags(argv, "payments-grpc", __doc__, 50052)
    # One client (one channel) per process, shared by every call.
    keys = example_flags.client_from_flags(flags)
    # Covers every wrapped method (method "grpc"); UNAVAILABLE and
    # RESOURCE_EXHAUSTED answers are released, not stored.
    core = IdempotencyCore(keys, default_grpc_options(
        require_key=True, **example_flags.middleware_flags(flags)))
    server = grpc.server(
        futures.ThreadPoolExecutor(MAX_WORKERS),
        interceptors=[IdempotencyInterceptor(core)],
        # gRPC lets a second server bind the same port by default; an app
        # server should fail to start instead.
        options=[("grpc.so_reuseport", 0)])
    payments_pb2_grpc.add_PaymentsServicer_to_server(
        Payments(flags["charge_delay"]), server)
    listen = "127.0.0.1:%d" % flags["listen_port"]
    try:
        port = server.add_insecure_port(listen)
    except RuntimeError as e:
        print("payments-grpc: cannot listen on %s: %s" % (listen, e),
              file=sys.stderr)
        return 1
    server.start()
    # With a grace period stop() returns at once and the server terminates
    # when the calls in flight are done; the longest grace there is waits
    # for them however long they take, as the HTTP app does.
    example_flags.started("payments-grpc", flags, port,
                          lambda: server.stop(threading.TIMEOUT_MAX))
    server.wait_for_termination()
    example_flags.stopped("payments-grpc", core)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
