"""The example app against the real idemkeyd, as tests/conformance drives
it: replay, 409 while in flight, 32 concurrent duplicates, throw-releases."""

import concurrent.futures
import json
import os
import signal
import subprocess
import tempfile
import urllib.request
import uuid

import pytest

from conftest import PYTHON_DIR, read_port

APP = os.path.join(PYTHON_DIR, "examples", "payments_http.py")


@pytest.fixture
def start_app(idemkeyd):
    procs = []

    def start(*flags):
        tmp = tempfile.mkdtemp()
        port_file = os.path.join(tmp, "port")
        proc = subprocess.Popen(
            ["/usr/bin/python3", APP, "--listen_port=0",
             "--port_file=" + port_file, "--idemkey=" + idemkeyd, *flags],
            stderr=subprocess.DEVNULL)
        procs.append(proc)
        return "http://127.0.0.1:%d" % read_port(port_file, proc)

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def post(base, key, body=b'{"amount":1}', **headers):
    h = {"X-Org-Id": "Acme Corp", **headers}
    if key:
        h["Idempotency-Key"] = key
    r = urllib.request.Request(base + "/v1/charges", data=body, headers=h,
                               method="POST")
    try:
        with urllib.request.urlopen(r, timeout=20) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def charges(base):
    with urllib.request.urlopen(base + "/v1/charges", timeout=10) as r:
        return json.loads(r.read())["charges"]


def test_replay_and_throw(start_app) -> None:
    base = start_app()
    key = str(uuid.uuid4())
    s1, h1, b1 = post(base, key)
    s2, h2, b2 = post(base, key)
    assert (s1, s2) == (201, 201) and b1 == b2
    assert b1 == b'{"id":"ch_1","request":{"amount":1}}\n'
    assert h2["Location"] == h1["Location"] == "/v1/charges/ch_1"
    assert h2["Idempotency-Replayed"] == "true"
    assert post(base, key, b"{}")[0] == 422
    assert post(base, None)[0] == 400
    k2 = str(uuid.uuid4())
    assert post(base, k2, **{"X-Fail": "throw"})[0] == 500
    assert post(base, k2)[0] == 201
    assert charges(base) == 2


def test_in_flight_and_concurrent(start_app) -> None:
    base = start_app("--charge_delay=300ms")
    key = str(uuid.uuid4())
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda _: post(base, key), range(32)))
    statuses = sorted(s for s, _, _ in results)
    assert set(statuses) <= {201, 409} and 201 in statuses
    assert charges(base) == 1
    busy = [h for s, h, _ in results if s == 409]
    assert all(int(h["Retry-After"]) >= 1 for h in busy)


def test_fail_closed(start_app, tmp_path) -> None:
    del start_app
    port_file = str(tmp_path / "port")
    proc = subprocess.Popen(
        ["/usr/bin/python3", APP, "--listen_port=0", "--port_file=" + port_file,
         "--idemkey=127.0.0.1:1"], stderr=subprocess.DEVNULL)
    try:
        base = "http://127.0.0.1:%d" % read_port(port_file, proc)
        status, headers, body = post(base, str(uuid.uuid4()))
        assert status == 503
        assert json.loads(body)["type"] == "urn:idemkey:unavailable"
        assert charges(base) == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
