#!/usr/bin/python3
"""payments-http: a small payments API protected by idemkey (WSGI).

The Python rewrite of client/cpp/examples/payments_http.cc, following the
example-app contract of tests/conformance/README.md (flags, routes,
X-Fail: throw). A threaded werkzeug server runs each request on its own
thread; SIGTERM or SIGINT stops it after the requests in flight.

    /usr/bin/python3 client/python/examples/payments_http.py \
        --listen_port=8080 --idemkey=127.0.0.1:50051
"""

import itertools
import json
import os
import re
import signal
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterable, List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "src"))

from werkzeug.serving import make_server  # noqa: E402

from idemkey import Client, IdempotencyCore, MiddlewareOptions  # noqa: E402
from idemkey.wsgi import IdempotencyMiddleware  # noqa: E402

FLAGS: Dict[str, Any] = {
    "listen_port": 8080, "port_file": "", "idemkey": "127.0.0.1:50051",
    "idemkey_cacert": "", "idemkey_token_env": "IDEMKEY_TOKEN",
    "fail_open": False, "lease": 30.0, "require_tenant": False,
    "wait_for_result": 0.0, "charge_delay": 0.0,
}
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6,
          "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str) -> float:
    """Seconds of a Go-style duration: "500ms", "2s", "1m30s", "0"."""
    if text in ("0", "+0", "-0"):
        return 0.0
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text.lstrip("+"):
        raise ValueError("bad duration %r (use 500ms, 2s, 1m30s)" % text)
    return sum(float(n) * _UNITS[u] for n, u in parts)


def parse_flags(argv: List[str]) -> Dict[str, Any]:
    """--name=value and bare --name for booleans, as the contract says."""
    flags = dict(FLAGS)
    for arg in argv:
        if arg in ("-h", "--help"):
            print(__doc__ + "\nflags: " + ", ".join("--" + f for f in FLAGS))
            sys.exit(0)
        if not arg.startswith("--"):
            raise SystemExit("payments-http: unexpected argument %r" % arg)
        name, has_value, value = arg[2:].partition("=")
        if name not in flags:
            raise SystemExit("payments-http: unknown flag --%s" % name)
        default = FLAGS[name]
        if isinstance(default, bool):
            if has_value and value.lower() not in ("true", "false", "1", "0"):
                raise SystemExit("payments-http: --%s takes true or false"
                                 % name)
            flags[name] = not has_value or value.lower() in ("true", "1")
        elif not has_value:
            raise SystemExit("payments-http: --%s needs a value" % name)
        elif isinstance(default, float):
            flags[name] = parse_duration(value)
        elif isinstance(default, int):
            flags[name] = int(value)
        else:
            flags[name] = value
    return flags


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
    flags = parse_flags(argv)
    token = os.environ.get(flags["idemkey_token_env"], "")
    root = None
    if flags["idemkey_cacert"]:
        with open(flags["idemkey_cacert"], "rb") as f:
            root = f.read()
    # One client (one channel) per process, shared by every request.
    keys = Client(flags["idemkey"], root_certificates=root, token=token)
    core = IdempotencyCore(keys, MiddlewareOptions(
        require_key=True, excluded_routes={"POST /v1/auth/login"},
        not_final_statuses={429, 503}, fail_open=flags["fail_open"],
        lease=flags["lease"], require_tenant=flags["require_tenant"],
        wait_for_result=flags["wait_for_result"]))
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
    port = server.server_port
    if flags["port_file"]:
        tmp = flags["port_file"] + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, flags["port_file"])
    print("payments-http listening on 127.0.0.1:%d, idemkeyd at %s"
          % (port, flags["idemkey"]), file=sys.stderr, flush=True)

    def stop(_sig: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    server.server_close()
    core.close()
    keys.close()
    print("payments-http stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
