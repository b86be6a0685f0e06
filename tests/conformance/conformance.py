#!/usr/bin/python3
"""The middleware conformance suite: every language's example app, from outside.

Starts a real idemkeyd, then for each case and each app a fresh app process
(tests/conformance/README.md has the app's contract and the cases), and
speaks HTTP to it. Prints a line per case and app, then a table, and exits 1
when any case failed.

    python3 tests/conformance/conformance.py \
        --idemkeyd build/server/daemon/idemkeyd \
        --app cpp=build/client/cpp/examples/payments-http \
        --app python='/usr/bin/python3 client/python/examples/payments_http.py'

Standard library only, so it runs on any Python 3.9+.
"""

import argparse
import http.client
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

START_TIMEOUT_S = 30
REQUEST_TIMEOUT_S = 30


class CaseFailed(Exception):
    """A case's expectation did not hold; the message says which."""


def expect(condition, message):
    if not condition:
        raise CaseFailed(message)


def wait_for_file(path, timeout_s, process=None):
    """The stripped contents of `path` once it exists and is not empty."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                text = f.read().strip()
            if text:
                return text
        if process is not None and process.poll() is not None:
            raise CaseFailed(f"exited with {process.returncode} before listening")
        time.sleep(0.02)
    raise CaseFailed(f"{path} did not appear within {timeout_s} s")


class Process:
    """A server started with --port_file, stopped by SIGTERM (then SIGKILL)."""

    def __init__(self, argv, workdir, name):
        self.name = name
        self.port_file = os.path.join(workdir, f"{name}.port")
        self.log_path = os.path.join(workdir, f"{name}.log")
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            argv + [f"--port_file={self.port_file}"],
            stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        try:
            self.port = int(wait_for_file(self.port_file, START_TIMEOUT_S,
                                          self.process))
        except CaseFailed as e:
            self.stop()
            raise CaseFailed(f"{name}: {e}; log:\n{self.log_text()}")

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]

    def kill9(self):
        self.process.kill()
        self.process.wait()
        self.log.close()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.log.closed:
            self.log.close()


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


class Suite:
    """One idemkeyd shared by every case; a fresh app per case."""

    def __init__(self, idemkeyd, apps, workdir):
        self.apps = apps  # name -> argv prefix
        self.workdir = workdir
        self.idemkeyd = Process(
            [idemkeyd, "--listen=127.0.0.1:0",
             f"--data_dir={os.path.join(workdir, 'data')}"],
            workdir, "idemkeyd")
        self.address = f"127.0.0.1:{self.idemkeyd.port}"
        self.run_id = uuid.uuid4().hex[:8]
        self.started = []

    def key(self, case, app):
        return f"conf-{self.run_id}-{case}-{app}-{uuid.uuid4().hex[:6]}"

    def start_app(self, app, *flags, idemkey=None):
        p = Process(self.apps[app] + [
            "--listen_port=0", f"--idemkey={idemkey or self.address}",
            *flags], self.workdir, f"{app}-{len(self.started)}")
        self.started.append(p)
        return p

    def close(self):
        for p in self.started:
            p.stop()
        self.idemkeyd.stop()


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


# Each case: (suite, app name) -> None, raising CaseFailed.

def case_replay(s, name):
    app = s.start_app(name)
    key = s.key("replay", name)
    first = post(app, key)
    expect_first(first)
    expect_replay_of(first, post(app, key))
    expect(charges(app) == 1, f"handler ran {charges(app)} times")


def case_other_body_422(s, name):
    app = s.start_app(name)
    key = s.key("body", name)
    expect_first(post(app, key))
    r = post(app, key, body=b'{"amount":999}')
    expect(r.status == 422, f"other body: {r}")
    expect(r.problem_type() == "urn:idemkey:key-reused", r)
    expect(charges(app) == 1, "handler ran again")


def case_other_query_422(s, name):
    app = s.start_app(name)
    key = s.key("query", name)
    expect_first(post(app, key, target="/v1/charges?amount=1"))
    r = post(app, key, target="/v1/charges?amount=999")
    expect(r.status == 422, f"other query string: {r}")
    expect(r.problem_type() == "urn:idemkey:key-reused", r)


def concurrently(*calls):
    """Runs each (delay_s, fn) in its own thread, started delay_s after the
    previous one; returns their results in order."""
    results = [None] * len(calls)
    errors = []

    def run(i, fn):
        try:
            results[i] = fn()
        except Exception as e:  # reported below, with the others
            errors.append(e)

    threads = []
    for i, (delay_s, fn) in enumerate(calls):
        time.sleep(delay_s)
        t = threading.Thread(target=run, args=(i, fn))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    if errors:
        raise CaseFailed(f"request failed: {errors[0]!r}")
    return results


def case_in_flight_409(s, name):
    app = s.start_app(name, "--charge_delay=1500ms")
    key = s.key("409", name)
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


def case_wait_for_result(s, name):
    app = s.start_app(name, "--charge_delay=1500ms", "--wait_for_result=5s")
    key = s.key("wait", name)
    a, b = concurrently((0, lambda: post(app, key)),
                        (0.3, lambda: post(app, key)))
    first, waited = (a, b) if a.header("idempotency-replayed") is None else (b, a)
    expect_first(first)
    expect_replay_of(first, waited)
    expect(charges(app) == 1, "handler ran twice")


def case_missing_key_400(s, name):
    app = s.start_app(name)
    r = post(app, key=None)
    expect(r.status == 400, f"no key: {r}")
    expect(r.problem_type() == "urn:idemkey:missing-key", r)
    expect(charges(app) == 0, "handler ran")


def case_malformed_key_400(s, name):
    app = s.start_app(name)
    for key in ("k" * 257, "a b"):
        r = post(app, key=key)
        expect(r.status == 400, f"key {key[:20]!r}...: {r}")
        expect(r.problem_type() == "urn:idemkey:malformed-key", r)
    expect(charges(app) == 0, "handler ran")


def case_missing_tenant_401(s, name):
    app = s.start_app(name, "--require_tenant")
    r = post(app, s.key("tenant", name), org=None)
    expect(r.status == 401, f"no tenant: {r}")
    expect(r.problem_type() == "urn:idemkey:missing-tenant", r)
    expect(charges(app) == 0, "handler ran")


def case_excluded_and_get(s, name):
    app = s.start_app(name)
    r = post(app, key=None, target="/v1/auth/login", body=b"{}")
    expect(r.status == 200, f"excluded route: {r}")
    expect(json.loads(r.body) == {"token": "example"}, r)
    expect(charges(app) == 0, "GET /v1/charges")


def case_concurrent_32(s, name):
    app = s.start_app(name, "--charge_delay=300ms")
    key = s.key("race", name)
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


def unreachable_address():
    # Port 1 on loopback: nothing listens, connections are refused at once.
    return "127.0.0.1:1"


def case_fail_closed(s, name):
    app = s.start_app(name, idemkey=unreachable_address())
    r = post(app, s.key("closed", name))
    expect(r.status == 503, f"idemkeyd down: {r}")
    expect(r.problem_type() == "urn:idemkey:unavailable", r)
    expect(charges(app) == 0, "handler ran")


def case_fail_open(s, name):
    app = s.start_app(name, "--fail_open", idemkey=unreachable_address())
    r = post(app, s.key("open", name))
    expect(r.status == 201, f"idemkeyd down, fail open: {r}")
    expect(charges(app) == 1, "handler did not run")


def case_throw_releases(s, name):
    app = s.start_app(name)
    key = s.key("throw", name)
    r = post(app, key, extra={"X-Fail": "throw"})
    expect(r.status == 500, f"handler threw: {r}")
    expect_first(post(app, key))
    expect(charges(app) == 1, "retry did not run the handler")


def case_killed_app_lease(s, name):
    lease_s = 4
    first = s.start_app(name, f"--lease={lease_s}s", "--charge_delay=30s")
    key = s.key("killed", name)
    thread = threading.Thread(target=lambda: _ignore_errors(
        lambda: post(first, key)))
    reserved_by = time.monotonic()
    thread.start()
    time.sleep(0.5)  # the request reaches the handler
    first.kill9()
    thread.join()
    second = s.start_app(name, f"--lease={lease_s}s")
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


def _ignore_errors(fn):
    try:
        fn()
    except Exception:
        pass  # the app was killed under the request, as intended


def case_tenant_mapping(s, name):
    app = s.start_app(name)
    key = s.key("org", name)
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


def interop(s):
    """A request run by any app is replayed, byte for byte, by every other
    app sharing the tenant: each app in turn runs one."""
    names = list(s.apps)
    apps = {n: s.start_app(n) for n in names}
    for runner in names:
        key = s.key("interop", runner)
        first = post(apps[runner], key, org="Interop Org")
        expect_first(first)
        for n in names:
            if n == runner:
                continue
            r = post(apps[n], key, org="Interop Org")
            try:
                expect_replay_of(first, r)
            except CaseFailed as e:
                raise CaseFailed(f"{n} replaying {runner}'s response: {e}")
    for n in names:
        expect(charges(apps[n]) == 1, f"{n} ran {charges(apps[n])} charges")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idemkeyd", required=True)
    parser.add_argument("--app", action="append", required=True,
                        metavar="NAME=COMMAND",
                        help="an example app: its name and command line")
    parser.add_argument("--case", action="append",
                        help="run only these cases (default: all)")
    args = parser.parse_args()
    apps = {}
    for spec in args.app:
        name, _, command = spec.partition("=")
        apps[name] = shlex.split(command)
    cases = [(n, f) for n, f in CASES if not args.case or n in args.case]

    results = {}  # (case, app) -> "pass" / "FAIL"
    failures = []
    with tempfile.TemporaryDirectory(prefix="idemkey-conformance-") as workdir:
        suite = Suite(args.idemkeyd, apps, workdir)
        try:
            for case_name, case in cases:
                for app in apps:
                    started = time.monotonic()
                    try:
                        case(suite, app)
                        results[case_name, app] = "pass"
                    except CaseFailed as e:
                        results[case_name, app] = "FAIL"
                        failures.append(f"{case_name} [{app}]: {e}")
                    print(f"{results[case_name, app]:4}  {case_name:20} "
                          f"{app:8} {time.monotonic() - started:5.1f} s",
                          flush=True)
                    for p in suite.started:
                        p.stop()
                    suite.started.clear()
            if len(apps) > 1 and (not args.case or "interop" in args.case):
                try:
                    interop(suite)
                    outcome = "pass"
                except CaseFailed as e:
                    outcome = "FAIL"
                    failures.append(f"interop: {e}")
                for app in apps:
                    results["interop", app] = outcome
                print(f"{outcome:4}  interop ({', '.join(apps)})", flush=True)
        finally:
            suite.close()

    rows = sorted({c for c, _ in results}, key=[n for n, _ in CASES +
                                                [("interop", None)]].index)
    print("\n| case | " + " | ".join(apps) + " |")
    print("|---|" + "---|" * len(apps))
    for c in rows:
        print(f"| {c} | " + " | ".join(results.get((c, a), "-")
                                       for a in apps) + " |")
    passed = sum(v == "pass" for v in results.values())
    print(f"\nconformance: {passed} of {len(results)} case runs passed "
          f"({len(apps)} apps)")
    for f in failures:
        print(f"FAILED {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
