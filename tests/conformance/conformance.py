#!/usr/bin/python3
"""The middleware conformance suite: every language's example apps, from outside.

Starts a real idemkeyd, then for each case and each app a fresh app process
(README.md has the apps' contract and the cases), and speaks HTTP
(http_cases.py) or gRPC (grpc_cases.py) to it. Prints a line per case and
app, then a table (case x language), and exits 1 when any case failed.

    /usr/bin/python3 tests/conformance/conformance.py \\
        --idemkeyd build/server/daemon/idemkeyd \\
        --app cpp=build/client/cpp/examples/payments-http \\
        --grpc-app cpp=build/client/cpp/examples/payments-grpc \\
        --app python='/usr/bin/python3 client/python/examples/payments_http.py'

The HTTP cases need only the standard library (Python 3.9+); the gRPC cases
need grpcio, protobuf and protoc.
"""

import argparse
import shlex
import sys
import tempfile
import time

import http_cases
from harness import App, CaseFailed, Suite


def parse_apps(specs):
    apps = []
    for spec in specs or ():
        name, _, command = spec.partition("=")
        apps.append(App(name, shlex.split(command)))
    return apps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idemkeyd", required=True)
    parser.add_argument("--app", action="append", metavar="NAME=COMMAND",
                        help="a payments-http: its language and command line")
    parser.add_argument("--grpc-app", action="append", metavar="NAME=COMMAND",
                        help="a payments-grpc: its language and command line")
    parser.add_argument("--case", action="append",
                        help="run only these cases (default: all)")
    args = parser.parse_args()
    # (module, apps): each protocol's cases and the apps they run against.
    families = []
    if args.app:
        families.append((http_cases, parse_apps(args.app)))
    if args.grpc_app:
        import grpc_cases  # only here: the HTTP cases need no grpcio
        families.append((grpc_cases, parse_apps(args.grpc_app)))
    if not families:
        parser.error("give at least one --app or --grpc-app")
    languages = list(dict.fromkeys(
        app.name for _, apps in families for app in apps))

    def wanted(case_name):
        return not args.case or case_name in args.case

    results = {}  # (case, language) -> "pass" / "FAIL"
    order = []  # the cases run, in order
    failures = []

    def record(case_name, apps, run):
        started = time.monotonic()
        try:
            run()
            outcome = "pass"
        except CaseFailed as e:
            outcome = "FAIL"
            failures.append(f"{case_name} [{', '.join(a.name for a in apps)}]:"
                            f" {e}")
        for app in apps:
            results[case_name, app.name] = outcome
        if case_name not in order:
            order.append(case_name)
        print(f"{outcome:4}  {case_name:22} "
              f"{', '.join(a.name for a in apps):8} "
              f"{time.monotonic() - started:5.1f} s", flush=True)

    with tempfile.TemporaryDirectory(prefix="idemkey-conformance-") as workdir:
        suite = Suite(args.idemkeyd, workdir)
        try:
            for module, apps in families:
                if module is not http_cases:
                    module.load_api(workdir)
                for case_name, case in module.CASES:
                    if not wanted(case_name):
                        continue
                    for app in apps:
                        record(case_name, [app], lambda: case(suite, app))
                        suite.stop_apps()
                if len(apps) > 1 and wanted(module.INTEROP):
                    record(module.INTEROP, apps, lambda: module.interop(suite, apps))
                    suite.stop_apps()
        finally:
            suite.close()

    print("\n| case | " + " | ".join(languages) + " |")
    print("|---|" + "---|" * len(languages))
    for c in order:
        print(f"| {c} | " + " | ".join(results.get((c, lang), "-")
                                       for lang in languages) + " |")
    passed = sum(v == "pass" for v in results.values())
    print(f"\nconformance: {passed} of {len(results)} case runs passed "
          f"({len(languages)} languages)")
    for f in failures:
        print(f"FAILED {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
