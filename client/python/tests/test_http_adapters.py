"""The WSGI (Flask, Django) and ASGI (Starlette, FastAPI) adapters: the same cases
through each framework, over the in-memory service."""

import json

import pytest
from flask import Flask, Response, request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from idemkey import IdempotencyCore, MiddlewareOptions
from idemkey import asgi, wsgi
from idemkey.testing import InMemoryKeyService

OPTIONS = dict(require_key=True, excluded_routes={"POST /v1/auth/login"})


class Counter:
    n = 0


def flask_client(core, counter):
    app = Flask(__name__)

    @app.post("/v1/charges")
    def charge():
        if request.headers.get("X-Fail") == "throw":
            raise RuntimeError("boom")
        counter.n += 1
        status = int(request.headers.get("X-Status", "201"))
        return Response(b'{"id":%d,"request":%s}' % (counter.n, request.data),
                        status=status, headers={"Location": "/c/%d" % counter.n},
                        content_type="application/json")

    @app.post("/v1/auth/login")
    def login():
        return "ok"

    # Exceptions must reach the middleware (Flask turns them into 500
    # responses otherwise, which would be stored); the server answers 500.
    app.config["PROPAGATE_EXCEPTIONS"] = True
    app.wsgi_app = server_500(wsgi.IdempotencyMiddleware(app.wsgi_app, core))
    return app.test_client()


def django_client(core, counter):
    import django
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.http import HttpResponse
    from django.urls import clear_url_caches, path
    from werkzeug.test import Client

    def charge(req):
        if req.headers.get("X-Fail") == "throw":
            raise RuntimeError("boom")
        counter.n += 1
        status = int(req.headers.get("X-Status", "201"))
        return HttpResponse(b'{"id":%d,"request":%s}' % (counter.n, req.body),
                            status=status, content_type="application/json",
                            headers={"Location": "/c/%d" % counter.n})

    def login(req):
        return HttpResponse(b"ok")

    global urlpatterns  # this module is the URL conf, new for each test
    urlpatterns = [path("v1/charges", charge), path("v1/auth/login", login)]
    clear_url_caches()
    if not settings.configured:
        # No CSRF or other middleware; exceptions reach the idempotency
        # middleware (as Flask's PROPAGATE_EXCEPTIONS does), not a 500 page
        # that would be stored.
        settings.configure(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"],
                           MIDDLEWARE=[], DEBUG_PROPAGATE_EXCEPTIONS=True,
                           SECRET_KEY="test")
        django.setup()
    return Client(server_500(wsgi.IdempotencyMiddleware(WSGIHandler(), core)))


def server_500(inner):
    """What a WSGI server does with an app that raises: a bare 500."""
    def app(environ, start_response):
        try:
            return inner(environ, start_response)
        except Exception:
            start_response("500 Internal Server Error", [])
            return [b""]
    return app


async def asgi_charge(req: Request, counter: Counter) -> StarletteResponse:
    """The charge route of the ASGI apps (FastAPI's Request is Starlette's)."""
    if req.headers.get("X-Fail") == "throw":
        raise RuntimeError("boom")
    counter.n += 1
    body = await req.body()
    status = int(req.headers.get("X-Status", "201"))
    return StarletteResponse(
        b'{"id":%d,"request":%s}' % (counter.n, body), status_code=status,
        headers={"Location": "/c/%d" % counter.n},
        media_type="application/json")


def starlette_client(core, counter):
    async def charge(req: Request):
        return await asgi_charge(req, counter)

    async def login(req: Request):
        return StarletteResponse("ok")

    app = Starlette(routes=[Route("/v1/charges", charge, methods=["POST"]),
                            Route("/v1/auth/login", login, methods=["POST"])])
    app.add_middleware(asgi.IdempotencyMiddleware, core=core)
    return TestClient(app, raise_server_exceptions=False)


def fastapi_client(core, counter):
    from fastapi import FastAPI
    app = FastAPI()

    @app.post("/v1/charges")
    async def charge(req: Request):
        return await asgi_charge(req, counter)

    @app.post("/v1/auth/login")
    async def login():
        return StarletteResponse("ok")

    app.add_middleware(asgi.IdempotencyMiddleware, core=core)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(params=["flask", "django", "starlette", "fastapi"])
def setup(request):
    keys = InMemoryKeyService()
    core = IdempotencyCore(keys, MiddlewareOptions(**OPTIONS))
    counter = Counter()
    make = {"flask": flask_client, "django": django_client,
            "starlette": starlette_client,
            "fastapi": fastapi_client}[request.param]
    yield keys, make(core, counter), counter
    core.close()


def post(client, path="/v1/charges", key="k1", body=b'{"a":1}', **headers):
    h = {"X-Org-Id": "Acme Corp"}
    if key is not None:
        h["Idempotency-Key"] = key
    h.update(headers)
    return client.post(path, data=body, headers=h)


def problem(resp, status, type_):
    assert resp.status_code == status
    assert resp.headers["Content-Type"] == "application/problem+json"
    doc = json.loads(resp.data if hasattr(resp, "data") else resp.content)
    assert doc["type"] == "urn:idemkey:" + type_ and doc["status"] == status
    assert doc["title"] and doc["detail"]
    return doc


def body_of(resp):
    return resp.data if hasattr(resp, "data") else resp.content


def test_replay(setup) -> None:
    _, client, counter = setup
    first = post(client)
    assert first.status_code == 201
    again = post(client)
    assert again.status_code == 201
    assert body_of(again) == body_of(first)
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert again.headers["Idempotency-Replayed"] == "true"
    assert "Idempotency-Replayed" not in first.headers
    assert counter.n == 1


def test_rejections(setup) -> None:
    keys, client, counter = setup
    assert post(client).status_code == 201
    problem(post(client, body=b"{}"), 422, "key-reused")
    problem(client.post("/v1/charges?x=1", data=b'{"a":1}',
                        headers={"X-Org-Id": "Acme Corp",
                                 "Idempotency-Key": "k1"}), 422, "key-reused")
    problem(post(client, key=None), 400, "missing-key")
    problem(post(client, key="a b"), 400, "malformed-key")
    problem(post(client, key="x" * 257), 400, "malformed-key")
    assert post(client, "/v1/auth/login", key=None).status_code == 200
    keys.set_failure(__import__("grpc").StatusCode.UNAVAILABLE)
    problem(post(client, key="k2"), 503, "unavailable")
    assert counter.n == 1


def test_throw_releases_and_not_final_is_not_stored(setup) -> None:
    _, client, counter = setup
    assert post(client, **{"X-Fail": "throw"}).status_code == 500
    assert post(client).status_code == 201
    assert post(client, key="k3", **{"X-Status": "503"}).status_code == 503
    assert post(client, key="k3").status_code == 201
    assert counter.n == 3  # the 503 ran too, and was not stored


def test_in_progress(setup) -> None:
    keys, client, _ = setup
    from idemkey import fingerprint, new_attempt_id
    from idemkey.v1 import idemkey_pb2 as pb
    from idemkey import tenant_name_for
    keys.reserve(pb.ReserveRequest(
        tenant=tenant_name_for("Acme Corp"), key="busy",
        fingerprint=fingerprint("POST", "/v1/charges", b'{"a":1}'),
        attempt_id=new_attempt_id()))
    resp = post(client, key="busy")
    problem(resp, 409, "in-progress")
    assert int(resp.headers["Retry-After"]) >= 1


def test_target_keeps_raw_path_and_query() -> None:
    assert wsgi.request_target({"RAW_URI": "/v1/caf%C3%A9?b=2&a=1"}) == \
        b"/v1/caf%C3%A9?b=2&a=1"
    assert wsgi.request_target({"PATH_INFO": "/v1/x y",
                                "QUERY_STRING": "a=1"}) == b"/v1/x%20y?a=1"
    assert asgi.request_target({"raw_path": b"/v1/%41", "path": "/v1/A",
                                "query_string": b"a=+"}) == b"/v1/%41?a=+"
    assert asgi.request_target({"path": "/v1/x", "query_string": b""}) == \
        b"/v1/x"


def _charge_wsgi(environ, start_response):
    start_response("201 Created", [("Content-Type", "application/json")])
    return [b'{"id":1}']


async def _charge_asgi(scope, receive, send):
    await receive()
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"id":1}'})


def _asgi_post(mw, key, send):
    """Runs one POST /v1/charges with `key` through ASGI middleware `mw`."""
    import asyncio

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/v1/charges",
             "raw_path": b"/v1/charges", "query_string": b"",
             "headers": [(b"x-org-id", b"Acme Corp"),
                         (b"idempotency-key", key.encode())]}
    asyncio.run(mw(scope, receive, send))


def _after_core(keys):
    return IdempotencyCore(keys, MiddlewareOptions(
        require_key=True, store_after_response=True))


def _state(keys, key):
    from idemkey import tenant_name_for
    return keys.lookup(tenant_name_for("Acme Corp"), key).state


def test_wsgi_store_after_response_stores_when_the_server_closes() -> None:
    from idemkey.v1 import idemkey_pb2 as pb
    keys = InMemoryKeyService()
    core = _after_core(keys)
    mw = wsgi.IdempotencyMiddleware(_charge_wsgi, core)
    started = []
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/charges",
               "HTTP_X_ORG_ID": "Acme Corp", "HTTP_IDEMPOTENCY_KEY": "w1",
               "CONTENT_LENGTH": "2", "wsgi.input": __import__("io").BytesIO(b"{}")}
    result = mw(environ, lambda status, headers: started.append(status))
    assert started == ["201 Created"] and b"".join(result) == b'{"id":1}'
    # Sent, not stored yet: the server has not closed the response.
    assert _state(keys, "w1") == pb.STATE_IN_PROGRESS
    result.close()
    assert _state(keys, "w1") == pb.STATE_COMPLETED
    core.close()


def test_asgi_store_after_response_sends_then_stores() -> None:
    from idemkey.v1 import idemkey_pb2 as pb
    keys = InMemoryKeyService()
    core = _after_core(keys)
    mw = asgi.IdempotencyMiddleware(_charge_asgi, core)
    seen = []

    async def send(message):
        # What the record held as each message left.
        seen.append((message["type"], _state(keys, "a1")))

    _asgi_post(mw, "a1", send)
    assert seen == [("http.response.start", pb.STATE_IN_PROGRESS),
                    ("http.response.body", pb.STATE_IN_PROGRESS)]
    assert _state(keys, "a1") == pb.STATE_COMPLETED
    core.close()


def test_asgi_store_after_response_stores_when_the_send_fails() -> None:
    from idemkey.v1 import idemkey_pb2 as pb
    keys = InMemoryKeyService()
    core = _after_core(keys)
    mw = asgi.IdempotencyMiddleware(_charge_asgi, core)

    async def send(message):
        raise OSError("the client went away")

    with pytest.raises(OSError):
        _asgi_post(mw, "a2", send)
    # The handler ran, so its response is kept: a retry never runs it again.
    assert _state(keys, "a2") == pb.STATE_COMPLETED
    core.close()
