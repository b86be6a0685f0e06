"""The gRPC cases, against each language's payments-grpc (README.md).

Needs grpcio and protobuf (Debian: python3-grpcio, python3-protobuf) and
protoc, which compiles the example's API (proto/idemkey/examples/
payments.proto) into the run's temporary directory: nothing generated is
kept in the tree. Answers are kept as the bytes on the wire, so replays are
compared byte for byte, whatever the app's language serialized them with.
"""

import importlib.util
import os
import subprocess
import threading

import grpc

from harness import (REQUEST_TIMEOUT_S, CaseFailed, concurrently, expect,
                     unreachable_address)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
METHOD = "/idemkey.examples.Payments/CreateCharge"
payments_pb2 = None  # set by load_api()


def load_api(workdir):
    """Compiles payments.proto with protoc and imports the result."""
    global payments_pb2
    out = os.path.join(workdir, "python")
    os.makedirs(out, exist_ok=True)
    subprocess.run(["protoc", f"-I{os.path.join(ROOT, 'proto')}",
                    f"--python_out={out}", "idemkey/examples/payments.proto"],
                   check=True, cwd=ROOT)
    # Imported from its file, as a module of its own: "idemkey.examples"
    # would collide with an installed idemkey package.
    spec = importlib.util.spec_from_file_location(
        "payments_pb2", os.path.join(out, "idemkey", "examples",
                                     "payments_pb2.py"))
    payments_pb2 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(payments_pb2)


class Answer:
    """One CreateCharge call as the app's client saw it."""

    def __init__(self, code, details, body, initial, trailing):
        self.code = code
        self.details = details
        self.body = body  # the Charge as sent, b"" unless OK
        self.initial = initial  # [(name, value)] in order
        self.trailing = trailing

    def charge(self):
        return payments_pb2.Charge.FromString(self.body)

    def charge_id(self):
        return self.charge().id if self.code == grpc.StatusCode.OK else None

    def metadata(self, part, name):
        for n, v in getattr(self, part):
            if n == name:
                return v
        return None

    def replayed(self):
        return self.metadata("initial", "idempotency-replayed") == "true"

    def __repr__(self):
        if self.code == grpc.StatusCode.OK:
            return f"OK {self.charge_id()} initial={self.initial}"
        return f"{self.code.name} {self.details!r}"


class GrpcApp:
    """A started payments-grpc and one channel to it."""

    def __init__(self, process):
        self.process = process
        self.channel = grpc.insecure_channel(f"127.0.0.1:{process.port}")
        self.create_charge = self.channel.unary_unary(
            METHOD, request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=lambda b: b)

    def call(self, key=None, amount=100, org="acme", extra=None,
             currency="EUR", description="conformance"):
        metadata = []
        if key is not None:
            metadata.append(("idempotency-key", key))
        if org is not None:
            metadata.append(("x-org-id", org))
        metadata.extend(extra or [])
        request = payments_pb2.CreateChargeRequest(
            amount=amount, currency=currency, description=description)
        try:
            body, call = self.create_charge.with_call(
                request, metadata=metadata, timeout=REQUEST_TIMEOUT_S,
                wait_for_ready=True)
            return Answer(grpc.StatusCode.OK, call.details(), body,
                          list(call.initial_metadata() or ()),
                          list(call.trailing_metadata() or ()))
        except grpc.RpcError as e:
            return Answer(e.code(), e.details(), b"",
                          list(e.initial_metadata() or ()),
                          list(e.trailing_metadata() or ()))

    def charges(self):
        """The charges this process made so far: a call without a tenant is
        not protected, runs at once and makes charge N+1."""
        a = self.call(org=None)
        expect(a.code == grpc.StatusCode.OK, f"unprotected call: {a}")
        return int(a.charge_id().removeprefix("ch_")) - 1

    def close(self):
        self.channel.close()


def start(s, lang, *flags, idemkey=None):
    app = GrpcApp(s.start_app(lang, *flags, idemkey=idemkey))
    s.on_stop(app.close)
    return app


def expect_first(a):
    expect(a.code == grpc.StatusCode.OK, f"first call: {a}")
    expect(not a.replayed(), f"first call marked replayed: {a.initial}")
    expect(a.metadata("initial", "x-charge-id") == a.charge_id(),
           f"x-charge-id of {a}")


def expect_replay_of(first, a):
    expect(a.code == first.code, f"replay {a} vs {first}")
    expect(a.replayed(), f"no idempotency-replayed: true in {a.initial}")
    expect(a.body == first.body, f"replay bytes {a.body!r} vs {first.body!r}")
    # A status message only means something with an error: on OK, grpc-js
    # sends "OK" where the other languages send nothing.
    expect(a.code == grpc.StatusCode.OK or a.details == first.details,
           f"replay message {a.details!r} vs {first.details!r}")
    expect(a.metadata("initial", "x-charge-id") ==
           first.metadata("initial", "x-charge-id"),
           f"replay x-charge-id {a.initial} vs {first.initial}")


# Each case: (suite, App) -> None, raising CaseFailed.

def case_replay(s, lang):
    app = start(s, lang)
    key = s.key("g-replay", lang)
    first = app.call(key)
    expect_first(first)
    expect(first.charge_id() == "ch_1", f"first charge {first}")
    expect_replay_of(first, app.call(key))
    second = app.call(s.key("g-replay-2", lang))
    expect(second.charge_id() == "ch_2", f"a new key: {second}")


def case_other_request(s, lang):
    app = start(s, lang)
    key = s.key("g-other", lang)
    expect_first(app.call(key))
    a = app.call(key, amount=999)
    expect(a.code == grpc.StatusCode.FAILED_PRECONDITION, f"other request: {a}")
    expect(app.charges() == 1, "handler ran again")


def case_stored_error(s, lang):
    app = start(s, lang)
    key = s.key("g-error", lang)
    first = app.call(key, amount=0)
    expect(first.code == grpc.StatusCode.INVALID_ARGUMENT, f"amount 0: {first}")
    expect(first.details == "amount must be positive, not 0",
           f"message {first.details!r}")
    expect(not first.replayed(), f"first call marked replayed: {first.initial}")
    expect_replay_of(first, app.call(key, amount=0))


def case_in_flight(s, lang):
    app = start(s, lang, "--charge_delay=1500ms")
    key = s.key("g-409", lang)
    a, b = concurrently((0, lambda: app.call(key)),
                        (0.3, lambda: app.call(key)))
    owner, refused = (a, b) if a.code == grpc.StatusCode.OK else (b, a)
    expect_first(owner)
    expect(refused.code == grpc.StatusCode.ABORTED, f"the retry: {refused}")
    retry_after = refused.metadata("trailing", "retry-after")
    expect(retry_after is not None and retry_after.isdigit() and
           int(retry_after) >= 1, f"retry-after {refused.trailing}")
    expect(app.charges() == 1, "handler ran twice")


def case_missing_key(s, lang):
    app = start(s, lang)
    a = app.call(key=None)
    expect(a.code == grpc.StatusCode.INVALID_ARGUMENT, f"no key: {a}")
    expect(app.charges() == 0, "handler ran")


def case_concurrent_32(s, lang):
    app = start(s, lang, "--charge_delay=300ms")
    key = s.key("g-race", lang)
    barrier = threading.Barrier(32)

    def one():
        barrier.wait()
        return app.call(key)

    answers = concurrently(*[(0, one) for _ in range(32)])
    ran = [a for a in answers
           if a.code == grpc.StatusCode.OK and not a.replayed()]
    expect(len(ran) == 1, f"{len(ran)} answers ran the handler")
    for a in answers:
        expect(a.charge_id() == "ch_1" or a.code == grpc.StatusCode.ABORTED,
               f"a duplicate got {a}")
    expect(app.charges() == 1, "handler ran more than once")


def case_fail_closed(s, lang):
    app = start(s, lang, idemkey=unreachable_address())
    a = app.call(s.key("g-closed", lang))
    expect(a.code == grpc.StatusCode.UNAVAILABLE, f"idemkeyd down: {a}")
    expect(app.charges() == 0, "handler ran")
    s.stop_apps()
    app = start(s, lang, "--fail_open", idemkey=unreachable_address())
    a = app.call(s.key("g-open", lang))
    expect(a.charge_id() == "ch_1", f"idemkeyd down, fail open: {a}")


def case_throw_releases(s, lang):
    app = start(s, lang)
    key = s.key("g-throw", lang)
    a = app.call(key, extra=[("x-fail", "throw")])
    expect(a.code == grpc.StatusCode.INTERNAL, f"handler threw: {a}")
    retry = app.call(key)
    expect_first(retry)
    expect(retry.charge_id() == "ch_1", f"the retry: {retry}")


CASES = [
    ("grpc-replay", case_replay),
    ("grpc-other-request", case_other_request),
    ("grpc-stored-error", case_stored_error),
    ("grpc-in-flight", case_in_flight),
    ("grpc-missing-key", case_missing_key),
    ("grpc-concurrent-32", case_concurrent_32),
    ("grpc-fail-closed", case_fail_closed),
    ("grpc-throw-releases", case_throw_releases),
]


INTEROP = "grpc-interop"  # the case run by interop() below, against all apps


def interop(s, langs):
    """A call run by any app is replayed, the same bytes and metadata, by
    every other app sharing the tenant: each app in turn runs one."""
    apps = {lang.name: start(s, lang) for lang in langs}
    for runner in langs:
        key = s.key("g-interop", runner)
        first = apps[runner.name].call(key, org="Interop Org")
        expect_first(first)
        for n, app in apps.items():
            if n == runner.name:
                continue
            try:
                expect_replay_of(first, app.call(key, org="Interop Org"))
            except CaseFailed as e:
                raise CaseFailed(f"{n} replaying {runner.name}'s call: {e}")
    for n, app in apps.items():
        made = app.charges()
        expect(made == 1, f"{n} made {made} charges")
