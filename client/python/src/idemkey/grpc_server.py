"""The idempotency middleware for unary-unary methods of a gRPC server.

    core = IdempotencyCore(keys, default_grpc_options())
    server = grpc.server(pool, interceptors=[IdempotencyInterceptor(core)])

The key is the `idempotency-key` metadata; every call is method "grpc" to
the core, its route and target the full method name; the body is the
request message serialized deterministically. Stored layout as in
docs/semantics.md, "gRPC replies": status_code is the code, headers
grpc-message, grpc-status-details-bin, initial/<name>, trailing/<name>, the
body the deterministically serialized response. Replays add initial
metadata `idempotency-replayed: true` (and `idempotency-body-omitted`). A
handler that raises releases the key; the call ends INTERNAL
"<method> failed: <error>". Streaming methods pass through untouched.
"""

from typing import Any, List, Optional, Tuple

import grpc

from idemkey.core import Action, IdempotencyCore, IncomingRequest
from idemkey.options import MiddlewareOptions, RequestInfo
from idemkey.v1 import idemkey_pb2 as pb

KEY_METADATA = "idempotency-key"
REPLAYED_METADATA = "idempotency-replayed"
BODY_OMITTED_METADATA = "idempotency-body-omitted"
RETRY_AFTER_METADATA = "retry-after"
_MESSAGE = "grpc-message"
_DETAILS = "grpc-status-details-bin"
_CODES = {c.value[0]: c for c in grpc.StatusCode}


def default_grpc_options(**overrides: Any) -> MiddlewareOptions:
    """Options covering every call (method "grpc"), releasing UNAVAILABLE
    and RESOURCE_EXHAUSTED instead of storing them."""
    values = dict(covered_methods={"grpc"}, not_final_statuses={8, 14})
    values.update(overrides)
    return MiddlewareOptions(**values)


class _Aborted(Exception):
    pass


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _as_value(name: str, value: bytes) -> Any:
    return value if name.endswith("-bin") else value.decode("utf-8")


class _RecordingContext:
    """The handler's context: records code, details and reply metadata so
    they are stored before the answer goes out; the rest is the real one."""

    def __init__(self, real: grpc.ServicerContext) -> None:
        self._real = real
        self.code: grpc.StatusCode = grpc.StatusCode.OK
        self.details = ""
        self.initial: List[Tuple[str, Any]] = []
        self.trailing: List[Tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details

    def send_initial_metadata(self, metadata: Any) -> None:
        self.initial.extend(metadata)

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.trailing = list(metadata)

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details
        raise _Aborted()

    def abort_with_status(self, status: Any) -> None:
        self.trailing.extend(status.trailing_metadata or ())
        self.abort(status.code, status.details)


class IdempotencyInterceptor(grpc.ServerInterceptor):
    """A server interceptor applying `core` to unary-unary methods."""

    def __init__(self, core: IdempotencyCore) -> None:
        self.core = core

    def intercept_service(self, continuation: Any,
                          details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if (handler is None or handler.request_streaming
                or handler.response_streaming or handler.unary_unary is None):
            return handler
        serialize = handler.response_serializer

        def serializer(response: Any) -> bytes:
            # Replays and stored answers are already bytes.
            if isinstance(response, bytes):
                return response
            return serialize(response) if serialize else response

        def behavior(request: Any, context: grpc.ServicerContext) -> Any:
            return self._handle(details.method, handler.unary_unary, request,
                                context)

        return grpc.unary_unary_rpc_method_handler(
            behavior, request_deserializer=handler.request_deserializer,
            response_serializer=serializer)

    def _handle(self, method: str, handler: Any, request: Any,
                context: grpc.ServicerContext) -> Any:
        metadata = {}
        for name, value in context.invocation_metadata() or ():
            metadata.setdefault(name.lower(), value)
        tenant = self.core.options.tenant(
            RequestInfo("grpc", method, metadata, context))
        key = metadata.get(KEY_METADATA)
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        body = request.SerializeToString(deterministic=True)
        d = self.core.begin(IncomingRequest("grpc", method, b"", tenant, key,
                                            body))
        if d.action == Action.BYPASS:
            return handler(request, context)
        if d.action == Action.REJECT:
            r = d.rejection
            if r.retry_after_seconds:
                context.set_trailing_metadata(
                    ((RETRY_AFTER_METADATA, str(r.retry_after_seconds)),))
            context.abort(r.reason.grpc_code, r.detail)
        if d.action == Action.REPLAY:
            return self._replay(d.replay, context)
        rec = _RecordingContext(context)
        response: Optional[Any] = None
        try:
            response = handler(request, rec)
        except _Aborted:
            pass
        except Exception as e:  # the handler failed: a retry runs it again
            d.execution.release()
            context.abort(grpc.StatusCode.INTERNAL,
                          "%s failed: %s" % (method, e))
        stored = pb.StoredResponse(status_code=rec.code.value[0])
        if rec.details:
            stored.headers.add(name=_MESSAGE, value=_as_bytes(rec.details))
        for name, value in rec.initial:
            stored.headers.add(name="initial/" + name, value=_as_bytes(value))
        for name, value in rec.trailing:
            stored.headers.add(name="trailing/" + name, value=_as_bytes(value))
        ok = rec.code == grpc.StatusCode.OK
        if ok and response is not None:
            stored.body = response.SerializeToString(deterministic=True)
        d.execution.finish(stored)
        if rec.initial:
            context.send_initial_metadata(rec.initial)
        if rec.trailing:
            context.set_trailing_metadata(rec.trailing)
        if not ok:
            context.abort(rec.code, rec.details)
        return stored.body

    @staticmethod
    def _replay(stored: pb.StoredResponse,
                context: grpc.ServicerContext) -> Any:
        code = _CODES.get(stored.status_code)
        if code is None:
            context.abort(grpc.StatusCode.INTERNAL,
                          "the stored response of this idempotency key has "
                          "status %d, which is not a gRPC status code"
                          % stored.status_code)
        message = ""
        initial: List[Tuple[str, Any]] = []
        trailing: List[Tuple[str, Any]] = []
        for h in stored.headers:
            if h.name == _MESSAGE:
                message = h.value.decode("utf-8", "replace")
            elif h.name == _DETAILS:
                trailing.append((_DETAILS, h.value))
            elif h.name.startswith("initial/"):
                name = h.name[len("initial/"):]
                initial.append((name, _as_value(name, h.value)))
            elif h.name.startswith("trailing/"):
                name = h.name[len("trailing/"):]
                trailing.append((name, _as_value(name, h.value)))
        initial.append((REPLAYED_METADATA, "true"))
        if stored.body_omitted:
            initial.append((BODY_OMITTED_METADATA, "true"))
        context.send_initial_metadata(initial)
        if trailing:
            context.set_trailing_metadata(trailing)
        if code != grpc.StatusCode.OK:
            context.abort(code, message)
        return stored.body
