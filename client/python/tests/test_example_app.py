"""payments-http against the real idemkeyd, as tests/conformance drives it:
replay, 409 while in flight, 32 concurrent duplicates, throw-releases."""

import concurrent.futures
import json
import urllib.request
import uuid

import pytest

APP = "payments_http.py"


@pytest.fixture
def start_app(start_example):
    return lambda *flags: "http://127.0.0.1:%d" % start_example(APP, *flags)


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


def test_fail_closed(start_app) -> None:
    base = start_app("--idemkey=127.0.0.1:1")
    status, headers, body = post(base, str(uuid.uuid4()))
    assert status == 503
    assert json.loads(body)["type"] == "urn:idemkey:unavailable"
    assert charges(base) == 0
