"""What both example apps share (payments_http.py, payments_grpc.py): the
flags of the example-app contract (tests/conformance/README.md), the
idemkeyd client and middleware settings they make, and what an app does
once listening and once stopped. The Python counterpart of client/cpp/examples/example_flags.h.
The apps put ../src on sys.path before they import this module.
"""

import os
import re
import signal
import sys
from typing import Any, Callable, Dict, List

from idemkey import Client, IdempotencyCore

#: Every flag but --listen_port, whose default is the app's own.
FLAGS: Dict[str, Any] = {
    "port_file": "", "idemkey": "127.0.0.1:50051", "idemkey_cacert": "",
    "idemkey_token_env": "IDEMKEY_TOKEN", "fail_open": False, "lease": 30.0,
    "require_tenant": False, "wait_for_result": 0.0, "charge_delay": 0.0,
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


def parse_flags(argv: List[str], program: str, usage: str,
                listen_port: int) -> Dict[str, Any]:
    """--name=value and bare --name for booleans, as the contract says;
    `program` prefixes the errors, `usage` is what --help prints."""
    defaults = {"listen_port": listen_port, **FLAGS}
    flags = dict(defaults)
    for arg in argv:
        if arg in ("-h", "--help"):
            print(usage + "\nflags: " + ", ".join("--" + f for f in defaults))
            sys.exit(0)
        if not arg.startswith("--"):
            raise SystemExit("%s: unexpected argument %r" % (program, arg))
        name, has_value, value = arg[2:].partition("=")
        if name not in flags:
            raise SystemExit("%s: unknown flag --%s" % (program, name))
        default = defaults[name]
        if isinstance(default, bool):
            if has_value and value.lower() not in ("true", "false", "1", "0"):
                raise SystemExit("%s: --%s takes true or false"
                                 % (program, name))
            flags[name] = not has_value or value.lower() in ("true", "1")
        elif not has_value:
            raise SystemExit("%s: --%s needs a value" % (program, name))
        elif isinstance(default, float):
            flags[name] = parse_duration(value)
        elif isinstance(default, int):
            flags[name] = int(value)
        else:
            flags[name] = value
    return flags


def client_from_flags(flags: Dict[str, Any]) -> Client:
    """The idemkeyd client: TLS with --idemkey_cacert, the bearer token
    from the environment variable --idemkey_token_env names."""
    token = os.environ.get(flags["idemkey_token_env"], "")
    root = None
    if flags["idemkey_cacert"]:
        with open(flags["idemkey_cacert"], "rb") as f:
            root = f.read()
    return Client(flags["idemkey"], root_certificates=root, token=token)


def middleware_flags(flags: Dict[str, Any]) -> Dict[str, Any]:
    """The MiddlewareOptions the flags set (the heartbeat interval follows
    the lease)."""
    return {"fail_open": flags["fail_open"], "lease": flags["lease"],
            "require_tenant": flags["require_tenant"],
            "wait_for_result": flags["wait_for_result"]}


def started(program: str, flags: Dict[str, Any], port: int,
            stop: Callable[[], None]) -> None:
    """What an app does once listening on `port`: writes --port_file, logs,
    and calls `stop` on SIGTERM or SIGINT (in the main thread, between two
    bytecodes: `stop` must not wait for the server it stops)."""
    if flags["port_file"]:
        # Atomically: whoever polls the file never reads a partial number.
        tmp = flags["port_file"] + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, flags["port_file"])
    print("%s listening on 127.0.0.1:%d, idemkeyd at %s"
          % (program, port, flags["idemkey"]), file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda _sig, _frame: stop())
    signal.signal(signal.SIGINT, lambda _sig, _frame: stop())


def stopped(program: str, core: IdempotencyCore) -> None:
    """What an app does once its server stopped: stops the heartbeats,
    closes the client (made by client_from_flags) and logs."""
    core.close()
    core.keys.close()
    print("%s stopped" % program, file=sys.stderr)
