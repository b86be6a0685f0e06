"""The idempotency middleware for WSGI apps (Flask, Django, ...).

    app.wsgi_app = IdempotencyMiddleware(app.wsgi_app, core)

The target fingerprinted is the request target as sent: RAW_URI (gunicorn,
werkzeug) or REQUEST_URI (uWSGI, Apache, werkzeug) when the server gives
one, else quote(PATH_INFO) + "?" + QUERY_STRING (wsgiref: PATH_INFO is
already decoded, so a target sent with needless escapes such as %41 then
differs from other implementations). The route matched against
excluded_routes is PATH_INFO. The response is buffered whole and stored
before it is sent (with store_after_response, when the server closes the
response it has sent); streaming bodies are buffered too.
"""

import http
import io
import urllib.parse
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Optional,
                    Tuple)

from idemkey.core import Action, IdempotencyCore, IncomingRequest
from idemkey.http_common import (KEY_HEADER, problem, replay_headers,
                                 stored_response)
from idemkey.options import RequestInfo

StartResponse = Callable[..., Any]


def _status_line(code: int) -> str:
    try:
        return "%d %s" % (code, http.HTTPStatus(code).phrase)
    except ValueError:
        return "%d Status" % code


def request_target(environ: Dict[str, Any]) -> bytes:
    """The request target as sent (see the module docstring)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return raw.encode("latin-1")
    path = urllib.parse.quote(
        environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
        safe="/:@!$&'()*+,;=-._~", encoding="latin-1")
    query = environ.get("QUERY_STRING", "")
    return (path + ("?" + query if query else "")).encode("latin-1")


def _headers(environ: Dict[str, Any]) -> Dict[str, str]:
    out = {}
    for name, value in environ.items():
        if name.startswith("HTTP_"):
            out[name[5:].replace("_", "-").lower()] = value
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            out[name.replace("_", "-").lower()] = environ[name]
    return out


def _read_body(environ: Dict[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > 0:
        body = stream.read(length)
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    # The app reads it again.
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


class _StoredOnClose:
    """The response body whose close() stores it: a WSGI server calls
    close() once it has sent the body (PEP 3333)."""

    def __init__(self, body: bytes, store: Callable[[], Any]) -> None:
        self._body = body
        self._store: Optional[Callable[[], Any]] = store

    def __iter__(self) -> Iterator[bytes]:
        return iter([self._body])

    def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store()


class IdempotencyMiddleware:
    """Wraps a WSGI app with the core's decisions."""

    def __init__(self, app: Callable[..., Iterable[bytes]],
                 core: IdempotencyCore) -> None:
        self.app = app
        self.core = core

    def __call__(self, environ: Dict[str, Any],
                 start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        route = environ.get("PATH_INFO", "") or "/"
        headers = _headers(environ)
        tenant = self.core.options.tenant(
            RequestInfo(method, route, headers, environ))
        key = headers.get(KEY_HEADER)
        decision = self.core.screen(method, route, tenant, key)
        if decision is None:
            body = _read_body(environ)
            decision = self.core.begin(IncomingRequest(
                method, route, request_target(environ), tenant, key, body))
        if decision.action == Action.BYPASS:
            return self.app(environ, start_response)
        if decision.action == Action.REJECT:
            status, hdrs, body = problem(decision.rejection)
            start_response(_status_line(status), hdrs)
            return [body]
        if decision.action == Action.REPLAY:
            stored = decision.replay
            start_response(_status_line(stored.status_code),
                           [(n, v.decode("latin-1"))
                            for n, v in replay_headers(stored)])
            return [stored.body]
        execution = decision.execution
        try:
            status, hdrs, body = self._run(environ)
        except BaseException:
            execution.release()
            raise
        stored = stored_response(
            int(status.split(" ", 1)[0]),
            [(name, value.encode("latin-1")) for name, value in hdrs], body)
        if self.core.options.store_after_response:
            start_response(status, hdrs)
            return _StoredOnClose(body, lambda: execution.finish(stored))
        # Stored before the answer leaves, so a retry after it replays.
        execution.finish(stored)
        start_response(status, hdrs)
        return [body]

    def _run(self, environ: Dict[str, Any]
             ) -> Tuple[str, List[Tuple[str, str]], bytes]:
        captured: List[Any] = []
        chunks: List[bytes] = []

        def capture(status: str, headers: List[Tuple[str, str]],
                    exc_info: Optional[Any] = None) -> Callable[[bytes], None]:
            if exc_info is not None and captured:
                raise exc_info[1].with_traceback(exc_info[2])
            captured[:] = [status, list(headers)]
            return chunks.append

        result = self.app(environ, capture)
        try:
            for chunk in result:
                chunks.append(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not captured:
            raise RuntimeError("the WSGI app returned without start_response")
        return captured[0], captured[1], b"".join(chunks)


__all__ = ["IdempotencyMiddleware", "request_target"]
