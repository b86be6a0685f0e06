#!/usr/bin/python3
"""payments-http: a small payments API protected by idemkey (WSGI).

The Python rewrite of client/cpp/examples/payments_http.cc, following the
example-app contract of tests/conformance/README.md (flags, routes,
X-Fail: throw). A threaded werkzeug server runs each request on its own
thread; SIGTERM or SIGINT stops it after the requests in flight.

    /usr/bin/python3 client/python/examples/payments_http.py \\
        --listen_port=8080 --idemkey=127.0.0.1:50051
"""

import itertools
import json
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterable, List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "src"))

from werkzeug.serving import make_server  # noqa: E402

import example_flags  # noqa: E402
from idemkey import IdempotencyCore, MiddlewareOptions  # noqa: E402
from idemkey.wsgi import IdempotencyMiddleware  # noqa: E402


def make_app(flags: Dict[str, Any]) -> Callable[..., Iterable[bytes]]:
    """The routes of the contract, behind the idemkey WSGI middleware."""
    charges = itertools.count(1)
    made = [0]
    lock = threading.Lock()

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]
            ) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO")
        json_type = ("Content-Type", "application/json")
        if path == "/v1/charges" and method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            time.sleep(flags["charge_delay"])
            if environ.get("HTTP_X_FAIL") == "throw":
                raise RuntimeError("X-Fail: throw")
            with lock:
                n = next(charges)
                made[0] += 1
            out = b'{"id":"ch_%d","request":%s}\n' % (n, body)
            start_response("201 Created", [
                ("Location", "/v1/charges/ch_%d" % n), json_type,
                ("Content-Length", str(len(out)))])
            return [out]
        if path == "/v1/charges" and method == "GET":
            out = json.dumps({"charges": made[0]}).replace(" ", "")
            data = (out + "\n").encode()
            start_response("200 OK", [json_type,
                                      ("Content-Length", str(len(data)))])
            return [data]
        if path == "/v1/auth/login" and method == "POST":
            data = b'{"token":"example"}\n'
            start_response("200 OK", [json_type,
                                      ("Content-Length", str(len(data)))])
            return [data]
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]

    return app


def main(argv: List[str]) -> int:
    flags = example_flags.parse_flags(argv, "payments-http", __doc__, 8080)
    # One client (one channel) per process, shared by every request.
    keys = example_flags.client_from_flags(flags)
    core = IdempotencyCore(keys, MiddlewareOptions(
        require_key=True, excluded_routes={"POST /v1/auth/login"},
        not_final_statuses={429, 503},
        **example_flags.middleware_flags(flags)))
    app = IdempotencyMiddleware(make_app(flags), core)
    try:
        server = make_server("127.0.0.1", flags["listen_port"], app,
                             threaded=True)
    except OSError as e:
        print("payments-http: cannot listen on 127.0.0.1:%d: %s"
              % (flags["listen_port"], e), file=sys.stderr)
        return 1
    # Join the request threads on close: stop after the requests in flight.
    server.daemon_threads = False
    server.block_on_close = True
    # shutdown() waits for serve_forever(), which the signal interrupted
    # on this very thread: it must run on another.
    example_flags.started("payments-http", flags, server.server_port,
                          lambda: threading.Thread(target=server.shutdown,
                                                   daemon=True).start())
    server.serve_forever()
    server.server_close()
    example_flags.stopped("payments-http", core)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
