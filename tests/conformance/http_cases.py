"""The HTTP cases, against each language's payments-http (README.md)."""

import http.client
import json
import threading
import time

from harness import (REQUEST_TIMEOUT_S, CaseFailed, concurrently, expect,
                     ignore_errors, unreachable_address)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # [(lower-case name, value)] in order
        self.body = body

    def header(self, name):
        for n, v in self.headers:
            if n == name.lower():
                return v
        return None

    def problem_type(self):
        content_type = self.header("content-type") or ""
        expect(content_type.startswith("application/problem+json"),
               f"{self.status} is not application/problem+json: "
               f"{content_type!r} {self.body[:200]!r}")
        return json.loads(self.body).get("type")

    def __repr__(self):
        return f"{self.status} {self.body[:160]!r}"


def request(port, method, target, headers=None, body=b""):
    conn = http.client.HTTPConnection("127.0.0.1", port,
                                      timeout=REQUEST_TIMEOUT_S)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, [(n.lower(), v) for n, v in r.getheaders()],
                        data)
    finally:
        conn.close()


def charges(app):
    r = request(app.port, "GET", "/v1/charges")
    expect(r.status == 200, f"GET /v1/charges: {r}")
    return json.loads(r.body)["charges"]


def post(app, key=None, body=b'{"amount":100}', target="/v1/charges",
         org="acme", extra=None):
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    if org is not None:
        headers["X-Org-Id"] = org
    headers.update(extra or {})
    return request(app.port, "POST", target, headers, body)


def expect_first(r):
    expect(r.status == 201, f"first request: {r}")
    expect(r.header("idempotency-replayed") is None,
           f"first request marked replayed: {r.headers}")


def expect_replay_of(first, r):
    expect(r.status == first.status, f"replay status {r} vs {first}")
    expect(r.header("idempotency-replayed") == "true",
           f"no Idempotency-Replayed: true in {r.headers}")
    for name in ("location", "content-type"):
        expect(r.header(name) == first.header(name),
               f"replay {name} {r.header(name)!r} vs {first.header(name)!r}")
    expect(r.body == first.body, f"replay body {r.body!r} vs {first.body!r}")


# Each case: (suite, App) -> None, raising CaseFailed.

def case_replay(s, lang):
    app = s.start_app(lang)
    key = s.key("replay", lang)
    first = post(app, key)
    expect_first(first)
    expect_replay_of(first, post(app, key))
    expect(charges(app) == 1, f"handler ran {charges(app)} times")


def case_other_body_422(s, lang):
    app = s.start_app(lang)
    key = s.key("body", lang)
    expect_first(post(app, key))
    r = post(app, key, body=b'{"amount":999}')
    expect(r.status == 422, f"other body: {r}")
    expect(r.problem_type() == "urn:idemkey:key-reused", r)
    expect(charges(app) == 1, "handler ran again")


def case_other_query_422(s, lang):
    app = s.start_app(lang)
    key = s.key("query", lang)
    expect_first(post(app, key, target="/v1/charges?amount=1"))
    r = post(app, key, target="/v1/charges?amount=999")
    expect(r.status == 422, f"other query string: {r}")
    expect(r.problem_type() == "urn:idemkey:key-reused", r)


def case_in_flight_409(s, lang):
    app = s.start_app(lang, "--charge_delay=1500ms")
    key = s.key("409", lang)
    a, b = concurrently((0, lambda: post(app, key)),
                        (0.3, lambda: post(app, key)))
    # Whichever reached the service first runs; the other is refused.
    owner, refused = (a, b) if a.status == 201 else (b, a)
    expect(owner.status == 201, f"neither ran: {a} / {b}")
    expect(refused.status == 409, f"the retry in flight: {refused}")
    expect(refused.problem_type() == "urn:idemkey:in-progress", refused)
    retry_after = refused.header("retry-after")
    expect(retry_after is not None and retry_after.isdigit() and
           int(retry_after) >= 1, f"Retry-After {retry_after!r}")
    expect(charges(app) == 1, "handler ran twice")


def case_wait_for_result(s, lang):
    app = s.start_app(lang, "--charge_delay=1500ms", "--wait_for_result=5s")
    key = s.key("wait", lang)
    a, b = concurrently((0, lambda: post(app, key)),
                        (0.3, lambda: post(app, key)))
    first, waited = (a, b) if a.header("idempotency-replayed") is None else (b, a)
    expect_first(first)
    expect_replay_of(first, waited)
    expect(charges(app) == 1, "handler ran twice")


def case_missing_key_400(s, lang):
    app = s.start_app(lang)
    r = post(app, key=None)
    expect(r.status == 400, f"no key: {r}")
    expect(r.problem_type() == "urn:idemkey:missing-key", r)
    expect(charges(app) == 0, "handler ran")


def case_malformed_key_400(s, lang):
    app = s.start_app(lang)
    for key in ("k" * 257, "a b"):
        r = post(app, key=key)
        expect(r.status == 400, f"key {key[:20]!r}...: {r}")
        expect(r.problem_type() == "urn:idemkey:malformed-key", r)
    expect(charges(app) == 0, "handler ran")


def case_missing_tenant_401(s, lang):
    app = s.start_app(lang, "--require_tenant")
    r = post(app, s.key("tenant", lang), org=None)
    expect(r.status == 401, f"no tenant: {r}")
    expect(r.problem_type() == "urn:idemkey:missing-tenant", r)
    expect(charges(app) == 0, "handler ran")


def case_excluded_and_get(s, lang):
    app = s.start_app(lang)
    r = post(app, key=None, target="/v1/auth/login", body=b"{}")
    expect(r.status == 200, f"excluded route: {r}")
    expect(json.loads(r.body) == {"token": "example"}, r)
    expect(charges(app) == 0, "GET /v1/charges")


def case_concurrent_32(s, lang):
    app = s.start_app(lang, "--charge_delay=300ms")
    key = s.key("race", lang)
    barrier = threading.Barrier(32)

    def one():
        barrier.wait()
        return post(app, key)

    answers = concurrently(*[(0, one) for _ in range(32)])
    ran = [r for r in answers
           if r.status == 201 and r.header("idempotency-replayed") is None]
    others = [r for r in answers if r not in ran]
    expect(len(ran) == 1, f"{len(ran)} answers ran the handler")
    for r in others:
        expect(r.status == 409 or r.header("idempotency-replayed") == "true",
               f"a duplicate got {r}")
    expect(charges(app) == 1, f"handler ran {charges(app)} times")


def case_fail_closed(s, lang):
    app = s.start_app(lang, idemkey=unreachable_address())
    r = post(app, s.key("closed", lang))
    expect(r.status == 503, f"idemkeyd down: {r}")
    expect(r.problem_type() == "urn:idemkey:unavailable", r)
    expect(charges(app) == 0, "handler ran")


def case_fail_open(s, lang):
    app = s.start_app(lang, "--fail_open", idemkey=unreachable_address())
    r = post(app, s.key("open", lang))
    expect(r.status == 201, f"idemkeyd down, fail open: {r}")
    expect(charges(app) == 1, "handler did not run")


def case_throw_releases(s, lang):
    app = s.start_app(lang)
    key = s.key("throw", lang)
    r = post(app, key, extra={"X-Fail": "throw"})
    expect(r.status == 500, f"handler threw: {r}")
    expect_first(post(app, key))
    expect(charges(app) == 1, "retry did not run the handler")


def case_killed_app_lease(s, lang):
    lease_s = 4
    first = s.start_app(lang, f"--lease={lease_s}s", "--charge_delay=30s")
    key = s.key("killed", lang)
    thread = threading.Thread(target=lambda: ignore_errors(
        lambda: post(first, key)))
    reserved_by = time.monotonic()
    thread.start()
    time.sleep(0.5)  # the request reaches the handler
    first.kill9()
    thread.join()
    second = s.start_app(lang, f"--lease={lease_s}s")
    r = post(second, key)
    if time.monotonic() - reserved_by < lease_s - 0.5:
        expect(r.status == 409, f"retry while the dead app's lease holds: {r}")
    deadline = reserved_by + lease_s + 10
    while r.status == 409 and time.monotonic() < deadline:
        time.sleep(0.25)
        r = post(second, key)
    expect_first(r)
    expect(time.monotonic() - reserved_by >= lease_s - 0.5,
           "ran before the lease could have lapsed")
    expect(charges(second) == 1, "the retry did not run the handler")


def case_tenant_mapping(s, lang):
    app = s.start_app(lang)
    key = s.key("org", lang)
    first = post(app, key, org="Acme Corp")
    expect_first(first)
    expect_replay_of(first, post(app, key, org="Acme Corp"))


CASES = [
    ("replay", case_replay),
    ("other-body-422", case_other_body_422),
    ("other-query-422", case_other_query_422),
    ("in-flight-409", case_in_flight_409),
    ("wait-for-result", case_wait_for_result),
    ("missing-key-400", case_missing_key_400),
    ("malformed-key-400", case_malformed_key_400),
    ("missing-tenant-401", case_missing_tenant_401),
    ("excluded-and-get", case_excluded_and_get),
    ("concurrent-32", case_concurrent_32),
    ("fail-closed", case_fail_closed),
    ("fail-open", case_fail_open),
    ("throw-releases", case_throw_releases),
    ("killed-app-lease", case_killed_app_lease),
    ("tenant-mapping", case_tenant_mapping),
]


INTEROP = "interop"  # the case run by interop() below, against all apps


def interop(s, langs):
    """A request run by any app is replayed, byte for byte, by every other
    app sharing the tenant: each app in turn runs one."""
    apps = {lang.name: s.start_app(lang) for lang in langs}
    for runner in langs:
        key = s.key("interop", runner)
        first = post(apps[runner.name], key, org="Interop Org")
        expect_first(first)
        for n, app in apps.items():
            if n == runner.name:
                continue
            try:
                expect_replay_of(first, post(app, key, org="Interop Org"))
            except CaseFailed as e:
                raise CaseFailed(f"{n} replaying {runner.name}'s response: {e}")
    for n, app in apps.items():
        made = charges(app)
        expect(made == 1, f"{n} made {made} charges")
