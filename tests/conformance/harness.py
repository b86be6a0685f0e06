"""What every conformance case uses: processes, one idemkeyd, expectations.

The cases themselves are in http_cases.py and grpc_cases.py; conformance.py
runs them.
"""

import os
import signal
import subprocess
import threading
import time
import uuid

START_TIMEOUT_S = 30
REQUEST_TIMEOUT_S = 30


class CaseFailed(Exception):
    """A case's expectation did not hold; the message says which."""


def expect(condition, message):
    if not condition:
        raise CaseFailed(message)


def wait_for_file(path, timeout_s, process=None):
    """The stripped contents of `path` once it exists and is not empty."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                text = f.read().strip()
            if text:
                return text
        if process is not None and process.poll() is not None:
            raise CaseFailed(f"exited with {process.returncode} before listening")
        time.sleep(0.02)
    raise CaseFailed(f"{path} did not appear within {timeout_s} s")


class Process:
    """A server started with --port_file, stopped by SIGTERM (then SIGKILL)."""

    def __init__(self, argv, workdir, name):
        self.name = name
        self.port_file = os.path.join(workdir, f"{name}.port")
        self.log_path = os.path.join(workdir, f"{name}.log")
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            argv + [f"--port_file={self.port_file}"],
            stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        try:
            self.port = int(wait_for_file(self.port_file, START_TIMEOUT_S,
                                          self.process))
        except CaseFailed as e:
            self.stop()
            raise CaseFailed(f"{name}: {e}; log:\n{self.log_text()}")

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]

    def kill9(self):
        self.process.kill()
        self.process.wait()
        self.log.close()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.log.closed:
            self.log.close()


class App:
    """An example app of one language: its name and its command line."""

    def __init__(self, name, command):
        self.name = name
        self.command = command  # argv prefix


class Suite:
    """One idemkeyd shared by every case; a fresh app process per case."""

    def __init__(self, idemkeyd, workdir):
        self.workdir = workdir
        self.idemkeyd = Process(
            [idemkeyd, "--listen=127.0.0.1:0",
             f"--data_dir={os.path.join(workdir, 'data')}"],
            workdir, "idemkeyd")
        self.address = f"127.0.0.1:{self.idemkeyd.port}"
        self.run_id = uuid.uuid4().hex[:8]
        self.started = []
        self.cleanups = []  # run when the apps stop: a case's channels

    def key(self, case, app):
        return f"conf-{self.run_id}-{case}-{app.name}-{uuid.uuid4().hex[:6]}"

    def start_app(self, app, *flags, idemkey=None):
        p = Process(app.command + [
            "--listen_port=0", f"--idemkey={idemkey or self.address}",
            *flags], self.workdir, f"{app.name}-{len(self.started)}")
        self.started.append(p)
        return p

    def on_stop(self, cleanup):
        self.cleanups.append(cleanup)

    def stop_apps(self):
        for cleanup in self.cleanups:
            cleanup()
        self.cleanups.clear()
        for p in self.started:
            p.stop()
        self.started.clear()

    def close(self):
        self.stop_apps()
        self.idemkeyd.stop()


def concurrently(*calls):
    """Runs each (delay_s, fn) in its own thread, started delay_s after the
    previous one; returns their results in order."""
    results = [None] * len(calls)
    errors = []

    def run(i, fn):
        try:
            results[i] = fn()
        except Exception as e:  # reported below, with the others
            errors.append(e)

    threads = []
    for i, (delay_s, fn) in enumerate(calls):
        time.sleep(delay_s)
        t = threading.Thread(target=run, args=(i, fn))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    if errors:
        raise CaseFailed(f"request failed: {errors[0]!r}")
    return results


def unreachable_address():
    # Port 1 on loopback: nothing listens, connections are refused at once.
    return "127.0.0.1:1"



def ignore_errors(fn):
    try:
        fn()
    except Exception:
        pass  # the app was killed under the request, as intended
