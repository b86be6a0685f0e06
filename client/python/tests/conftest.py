"""Shared fixtures: repo paths, a real idemkeyd (skipped when absent), the
example apps started against it, and a poll helper (deadlines, never
sleeps as assertions)."""

import os
import signal
import subprocess
import tempfile
import time
from typing import Callable, Iterator, List

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
EXAMPLES_DIR = os.path.join(PYTHON_DIR, "examples")
REPO_ROOT = os.path.abspath(os.path.join(PYTHON_DIR, "..", ".."))
IDEMKEYD = os.environ.get(
    "IDEMKEYD", os.path.join(REPO_ROOT, "build", "server", "daemon", "idemkeyd"))


def poll(check: Callable[[], bool], timeout: float = 10.0,
         what: str = "condition") -> None:
    """Waits until check() is true, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def read_port(path: str, proc: subprocess.Popen, timeout: float = 20.0) -> int:
    """The port a process wrote to `path` once serving."""
    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError("process exited with %s" % proc.returncode)
        try:
            with open(path) as f:
                return f.read().endswith("\n")
        except FileNotFoundError:
            return False
    poll(ready, timeout, "port file " + path)
    with open(path) as f:
        return int(f.read().strip())


@pytest.fixture(scope="session")
def idemkeyd() -> Iterator[str]:
    """host:port of a real idemkeyd for this session."""
    if not os.access(IDEMKEYD, os.X_OK):
        pytest.skip("no idemkeyd binary at %s (set $IDEMKEYD, or build it)"
                    % IDEMKEYD)
    with tempfile.TemporaryDirectory() as tmp:
        port_file = os.path.join(tmp, "port")
        log = open(os.path.join(tmp, "log"), "wb")
        proc = subprocess.Popen(
            [IDEMKEYD, "--listen=127.0.0.1:0",
             "--data_dir=" + os.path.join(tmp, "data"),
             "--port_file=" + port_file, "--sync=false"],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            yield "127.0.0.1:%d" % read_port(port_file, proc)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


@pytest.fixture
def start_example(idemkeyd: str) -> Iterator[Callable[..., int]]:
    """start(script, *flags) runs examples/<script> against idemkeyd (a
    later --idemkey flag overrides it) and returns its port; each app is
    stopped with SIGTERM at the end and must exit 0."""
    procs: List[subprocess.Popen] = []

    def start(script: str, *flags: str) -> int:
        port_file = os.path.join(tempfile.mkdtemp(), "port")
        proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(EXAMPLES_DIR, script),
             "--listen_port=0", "--port_file=" + port_file,
             "--idemkey=" + idemkeyd, *flags],
            stderr=subprocess.DEVNULL)
        procs.append(proc)
        return read_port(port_file, proc)

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
