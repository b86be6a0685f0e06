#!/bin/sh
# Runs the Python package's tests with Debian's interpreter, from any cwd.
# Integration tests use $IDEMKEYD (default: build/server/daemon/idemkeyd);
# without it they are skipped with the reason.
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "$here" && PYTHONPATH="$here/src" exec /usr/bin/python3 -m pytest -q \
    -p no:cacheprovider -W ignore::DeprecationWarning "$@" tests
