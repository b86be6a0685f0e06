"""The idempotency middleware for ASGI apps (Starlette, FastAPI, ...).

    app.add_middleware(IdempotencyMiddleware, core=core)   # Starlette/FastAPI
    app = IdempotencyMiddleware(app, core)                 # any ASGI app

The target fingerprinted is scope["raw_path"] (the path as sent; quoted
scope["path"] when the server gives none) plus "?" and query_string when
there is one; the route matched against excluded_routes is scope["path"].
The core's blocking calls (the key service, wait_for_result) run in a
thread pool of `max_workers` threads, so the event loop never blocks;
heartbeats run on the core's thread. The app's response is buffered whole
and stored before it is sent (after, with store_after_response).
"""

import asyncio
import concurrent.futures
import functools
import urllib.parse
from typing import Any, Awaitable, Callable, Dict, List, MutableMapping

from idemkey.core import Action, IdempotencyCore, IncomingRequest
from idemkey.http_common import (KEY_HEADER, problem, replay_headers,
                                 stored_response)
from idemkey.options import RequestInfo

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def request_target(scope: Scope) -> bytes:
    """Path and query string as sent (see the module docstring)."""
    path = scope.get("raw_path") or urllib.parse.quote(
        scope.get("root_path", "") + scope.get("path", "")).encode("latin-1")
    query = scope.get("query_string", b"")
    return path + b"?" + query if query else path


class IdempotencyMiddleware:
    """Wraps an ASGI app with the core's decisions (HTTP scopes only)."""

    def __init__(self, app: Callable[..., Awaitable[None]],
                 core: IdempotencyCore, max_workers: int = 64) -> None:
        self.app = app
        self.core = core
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="idemkey-asgi")

    async def _blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool,
                                          functools.partial(fn, *args))

    async def __call__(self, scope: Scope, receive: Receive,
                       send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        route = scope.get("path", "")
        headers: Dict[str, str] = {}
        for name, value in scope.get("headers", []):
            headers.setdefault(name.decode("latin-1").lower(),
                               value.decode("latin-1"))
        tenant = self.core.options.tenant(
            RequestInfo(method, route, headers, scope))
        key = headers.get(KEY_HEADER)
        decision = self.core.screen(method, route, tenant, key)
        if decision is not None and decision.action == Action.BYPASS:
            await self.app(scope, receive, send)
            return
        if decision is None:
            body = await _read_body(receive)
            receive = _replaying(body)
            decision = await self._blocking(
                self.core.begin,
                IncomingRequest(method, route, request_target(scope), tenant,
                                key, body))
        if decision.action == Action.BYPASS:
            await self.app(scope, receive, send)
        elif decision.action == Action.REJECT:
            status, hdrs, body = problem(decision.rejection)
            await _send_whole(send, status,
                              [(n.encode(), v.encode()) for n, v in hdrs],
                              body)
        elif decision.action == Action.REPLAY:
            stored = decision.replay
            await _send_whole(send, stored.status_code,
                              [(n.encode("latin-1"), v)
                               for n, v in replay_headers(stored)],
                              stored.body)
        else:
            await self._run(scope, receive, send, decision.execution)

    async def _run(self, scope: Scope, receive: Receive, send: Send,
                   execution: Any) -> None:
        messages: List[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await self._blocking(execution.release)
            raise
        start = next((m for m in messages
                      if m["type"] == "http.response.start"), None)
        if start is None:
            await self._blocking(execution.release)
            raise RuntimeError("the ASGI app returned without a response")
        body = b"".join(m.get("body", b"") for m in messages
                        if m["type"] == "http.response.body")
        stored = stored_response(
            int(start["status"]),
            [(bytes(name).decode("latin-1"), bytes(value))
             for name, value in start.get("headers", [])], body)
        if self.core.options.store_after_response:
            try:
                for message in messages:
                    await send(message)
            finally:
                # The handler ran: stored even if the client went away.
                await self._blocking(execution.finish, stored)
            return
        # Stored before the answer leaves, so a retry after it replays.
        await self._blocking(execution.finish, stored)
        for message in messages:
            await send(message)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes) -> Receive:
    """A receive() that gives the app the body already read, then waits
    for the client's disconnect like a server's would."""
    sent = False
    disconnected = asyncio.Event()

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await disconnected.wait()
        return {"type": "http.disconnect"}

    return receive


async def _send_whole(send: Send, status: int, headers: List[Any],
                      body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": headers})
    await send({"type": "http.response.body", "body": body})
