"""The gRPC server interceptor on a unary method (messages borrowed from
idemkey.v1: LookupRequest in, LookupResponse out)."""

from concurrent import futures

import grpc

from idemkey import IdempotencyCore
from idemkey.grpc_server import IdempotencyInterceptor, default_grpc_options
from idemkey.testing import InMemoryKeyService
from idemkey.v1 import idemkey_pb2 as pb


def test_run_replay_and_rejections() -> None:
    calls = []

    def charge(request, context):
        calls.append(request.key)
        if request.key == "throw":
            raise RuntimeError("boom")
        context.send_initial_metadata((("x-charge", str(len(calls))),))
        return pb.LookupResponse(record=pb.Record(key="ch_%d" % len(calls)))

    core = IdempotencyCore(InMemoryKeyService(), default_grpc_options(
        require_key=True))
    server = grpc.server(futures.ThreadPoolExecutor(4),
                         interceptors=[IdempotencyInterceptor(core)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "test.Payments", {"Charge": grpc.unary_unary_rpc_method_handler(
            charge, request_deserializer=pb.LookupRequest.FromString,
            response_serializer=pb.LookupResponse.SerializeToString)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % port) as channel:
            call = channel.unary_unary(
                "/test.Payments/Charge",
                request_serializer=pb.LookupRequest.SerializeToString,
                response_deserializer=pb.LookupResponse.FromString)
            md = (("x-org-id", "acme"), ("idempotency-key", "k1"))
            first, c1 = call.with_call(pb.LookupRequest(key="a"), metadata=md)
            again, c2 = call.with_call(pb.LookupRequest(key="a"), metadata=md)
            assert first == again and first.record.key == "ch_1"
            assert ("idempotency-replayed", "true") in c2.initial_metadata()
            assert ("x-charge", "1") in c2.initial_metadata()
            for request, metadata, code in [
                    (pb.LookupRequest(key="b"), md,
                     grpc.StatusCode.FAILED_PRECONDITION),
                    (pb.LookupRequest(key="a"), md[:1],
                     grpc.StatusCode.INVALID_ARGUMENT),
                    (pb.LookupRequest(key="throw"),
                     (md[0], ("idempotency-key", "k2")),
                     grpc.StatusCode.INTERNAL)]:
                try:
                    call(request, metadata=metadata)
                    raise AssertionError("no error")
                except grpc.RpcError as e:
                    assert e.code() == code
            assert calls == ["a", "throw"]
            # The throw released k2: a retry runs the handler again.
            try:
                call(pb.LookupRequest(key="throw"),
                     metadata=(md[0], ("idempotency-key", "k2")))
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.INTERNAL
            assert calls == ["a", "throw", "throw"]
    finally:
        server.stop(None)
        core.close()
