"""The typed client of idemkeyd's KeyService.

One Client holds one gRPC channel; it is thread-safe and meant to be made
once per process and shared by every request. Every attempt has a deadline
(`call_timeout`), and UNAVAILABLE answers, and CANCELLED ones from a
stopping idemkeyd (it cancels the calls it had received but not started),
are retried with jittered exponential backoff like the C++ client: safe for
every call (a Reserve keeps its attempt_id, a retried Complete is OK, a
Heartbeat extends again). A call the client itself cancelled (close() while
it ran) is not retried.

The address is host:port, or a gRPC target naming several replicas (over
the PostgreSQL backend): "ipv4:10.0.0.1:50051,10.0.0.2:50051", or
"dns:///idemkey.internal:50051" resolving to each (a Kubernetes headless
Service). Calls go round-robin over the replicas that are up, and a call
one of them failed is retried on another.

    client = Client("127.0.0.1:50051", token="...")
    r = client.reserve(ReserveRequest(tenant="acme", key="k", ...))

Errors raise idemkey.errors.ServiceError with the gRPC code and message.
"""

import random
import threading
import time
import uuid
from typing import Any, Callable, Optional, Sequence, Tuple

import grpc

from idemkey.errors import ServiceError
from idemkey.v1 import idemkey_pb2 as pb
from idemkey.v1 import idemkey_pb2_grpc as pb_grpc


def new_attempt_id() -> str:
    """A fresh random attempt id (a version-4 UUID)."""
    return str(uuid.uuid4())


class Client:
    """KeyService over one channel; see the module docstring."""

    def __init__(
        self,
        address: str = "127.0.0.1:50051",
        *,
        root_certificates: Optional[bytes] = None,
        tls: bool = False,
        credentials: Optional[grpc.ChannelCredentials] = None,
        token: str = "",
        token_provider: Optional[Callable[[], str]] = None,
        call_timeout: float = 2.0,
        max_attempts: int = 4,
        initial_backoff: float = 0.05,
        max_backoff: float = 1.0,
        reconnect_initial_backoff: float = 0.1,
        reconnect_max_backoff: float = 0.5,
        min_connect_timeout: float = 1.0,
        channel_options: Sequence[Tuple[str, Any]] = (),
    ) -> None:
        """`root_certificates` (PEM) or `tls` make the channel TLS
        (`credentials` overrides both, e.g. for mutual TLS). `token_provider`,
        when set, is asked for the bearer token before every call, so a
        rotated token is used without a restart. The reconnect settings are
        the C++ client's: the app recovers well within 1 s of idemkeyd."""
        self.address = address
        self.call_timeout = call_timeout
        self.max_attempts = max(1, max_attempts)
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._token = token
        self._token_provider = token_provider
        self._sleep = time.sleep  # replaced in tests
        options = [
            # Stored responses reach 4 MiB; Lookup returns them whole.
            ("grpc.max_receive_message_length", -1),
            ("grpc.max_send_message_length", -1),
            # This client retries UNAVAILABLE and CANCELLED itself; gRPC's
            # retries would multiply the attempts.
            ("grpc.enable_retries", 0),
            # Every address the target names (several replicas) takes calls
            # in turn; one that is draining or gone takes none.
            ("grpc.lb_policy_name", "round_robin"),
            ("grpc.initial_reconnect_backoff_ms",
             int(reconnect_initial_backoff * 1000)),
            ("grpc.max_reconnect_backoff_ms", int(reconnect_max_backoff * 1000)),
            ("grpc.min_reconnect_backoff_ms", int(min_connect_timeout * 1000)),
        ] + list(channel_options)
        if credentials is None and (tls or root_certificates is not None):
            credentials = grpc.ssl_channel_credentials(
                root_certificates=root_certificates)
        if credentials is not None:
            self._channel = grpc.secure_channel(address, credentials, options)
        else:
            self._channel = grpc.insecure_channel(address, options)
        # Keeps a thread polling the channel's connection attempts (like the
        # C++ client's ConnectionPoller), so a refused attempt is noticed at
        # once rather than at its connect timeout.
        self._channel.subscribe(_ignore_state, try_to_connect=False)
        self._stub = pb_grpc.KeyServiceStub(self._channel)
        self._closed = threading.Event()

    # KeyService.
    def reserve(self, request: pb.ReserveRequest) -> pb.ReserveResponse:
        """Reserve; OK answers carry one of the four outcomes."""
        return self._call(self._stub.Reserve, request)

    def complete(self, request: pb.CompleteRequest) -> pb.CompleteResponse:
        """Complete with the lease holder's token."""
        return self._call(self._stub.Complete, request)

    def release(self, request: pb.ReleaseRequest) -> pb.ReleaseResponse:
        """Release the reservation so that a retry runs the request."""
        return self._call(self._stub.Release, request)

    def heartbeat(self, request: pb.HeartbeatRequest) -> pb.HeartbeatResponse:
        """Extend the lease of the holder."""
        return self._call(self._stub.Heartbeat, request)

    def lookup(self, tenant: str, key: str) -> pb.Record:
        """The live record of (tenant, key); NOT_FOUND when absent."""
        return self._call(self._stub.Lookup,
                          pb.LookupRequest(tenant=tenant, key=key)).record

    def ping(self) -> None:
        """Connectivity check; raises ServiceError when unreachable."""
        self._call(self._stub.Ping, pb.PingRequest())

    def close(self) -> None:
        """Close the channel; calls after this fail, and calls in flight
        end CANCELLED (not retried)."""
        self._closed.set()
        self._channel.unsubscribe(_ignore_state)
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _metadata(self) -> Sequence[Tuple[str, str]]:
        token = self._token_provider() if self._token_provider else self._token
        if not token:
            return ()
        # gRPC refuses a header value it cannot send; say so plainly.
        if any(not 0x20 <= ord(c) < 0x7F for c in token):
            raise ServiceError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "the bearer token has a character a header cannot carry (a "
                "newline?); tokens are printable ASCII")
        return (("authorization", "Bearer " + token),)

    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        return call_with_retries(
            lambda: method(request, timeout=self.call_timeout,
                           metadata=self._metadata()),
            self.max_attempts, self.initial_backoff, self.max_backoff,
            self._sleep, cancelled_locally=self._closed.is_set)


def _ignore_state(_state: grpc.ChannelConnectivity) -> None:
    pass


def call_with_retries(attempt: Callable[[], Any], max_attempts: int,
                      initial_backoff: float, max_backoff: float,
                      sleep: Callable[[float], None] = time.sleep,
                      cancelled_locally: Callable[[], bool] = lambda: False,
                      ) -> Any:
    """Runs `attempt` until it is neither UNAVAILABLE nor CANCELLED, or
    `max_attempts` ran; each wait is drawn uniformly from [backoff/2,
    backoff], the backoff doubling up to `max_backoff`. CANCELLED is not
    retried once `cancelled_locally()` is true (the caller cancelled it).
    gRPC errors become ServiceError."""
    backoff = initial_backoff
    for i in range(1, max_attempts + 1):
        try:
            return attempt()
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
            details = e.details() if hasattr(e, "details") else str(e)
            if not _retryable(code, cancelled_locally) or i >= max_attempts:
                raise ServiceError(code, details or "") from None
        sleep(backoff * random.uniform(0.5, 1.0))
        backoff = min(backoff * 2, max_backoff)
    raise AssertionError("unreachable")


def _retryable(code: grpc.StatusCode,
               cancelled_locally: Callable[[], bool]) -> bool:
    # CANCELLED that this process did not cause comes from a stopping
    # idemkeyd: gRPC cancels the calls it had received but not started when
    # its drain begins. Every call is safe to retry, on another replica if
    # there is one.
    if code == grpc.StatusCode.CANCELLED:
        return not cancelled_locally()
    return code == grpc.StatusCode.UNAVAILABLE
