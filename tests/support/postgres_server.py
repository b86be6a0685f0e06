#!/usr/bin/python3
"""postgres_server.py — one throwaway PostgreSQL 15 server for a test run.

    postgres_server.py start --dir DIR --dsn_file FILE
    postgres_server.py stop --dir DIR

`start` makes DIR a PostgreSQL data directory (initdb, trust auth, superuser
`postgres`), starts the server in the background on 127.0.0.1 at a free port
with its unix socket in DIR, waits until it accepts connections, writes a
libpq conninfo ("host=127.0.0.1 port=N user=postgres dbname=postgres") to
FILE and exits 0, leaving the server running; the postmaster's PID is the
first line of DIR/postmaster.pid. Run again on a DIR whose server runs, it
only writes FILE; on a DIR whose server stopped or crashed, it starts it
again. `stop` shuts the server down (fast: open sessions are ended) and
removes DIR; a DIR that does not exist is already stopped.

Made to be a CTest fixture: the setup test runs `start`, the cleanup test
`stop`, and each test in between creates its own database.

PostgreSQL refuses to run as root, so when run as root every PostgreSQL
program runs as the `postgres` user (Debian's postgresql package makes it).
When that user cannot reach DIR (a clone inside a `mktemp -d` directory,
mode 700), the data directory is made under /tmp instead and DIR becomes a
symlink to it; `stop` removes both. fsync and synchronous_commit stay on: the
tests that use this server are about durability.

Importable: start(dir) returns the conninfo, stop(dir); the process helpers
below are shared with tests/failover/patroni_cluster.py.
"""

import argparse
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PG_BIN = "/usr/lib/postgresql/15/bin"

# Appended to the postgresql.conf that initdb writes. The port is not here:
# each start picks a free one (see start()).
SERVER_SETTINGS = """
# tests/support/postgres_server.py
listen_addresses = '{listen}'
unix_socket_directories = '{socket_dir}'
max_connections = 300
shared_buffers = 128MB
fsync = on
synchronous_commit = on
"""

# Where start() puts the data directory when the postgres user cannot reach
# the one it was given (under tempfile.gettempdir(), normally /tmp).
OUTSIDE_PREFIX = "idemkey-pg-"

# A unix socket path is at most 107 bytes; PostgreSQL's is
# DIR/.s.PGSQL.NNNNN.
MAX_SOCKET_DIR = 107 - len("/.s.PGSQL.65535")


class ServerError(Exception):
    pass


def postgres_user_kwargs():
    """Popen arguments that run a PostgreSQL program as `postgres` when we
    are root, and as ourselves otherwise (a developer's own account)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": [],
            "env": dict(os.environ, HOME=pwd.getpwnam("postgres").pw_dir)}


def chown_to_postgres(path):
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


def run_as_postgres(args, timeout=120):
    """Runs a PostgreSQL program to completion; raises ServerError with its
    output when it fails."""
    done = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, cwd="/",
                          **postgres_user_kwargs())
    if done.returncode != 0:
        raise ServerError("{} failed (exit {}):\n{}{}".format(
            " ".join(args), done.returncode, done.stdout, done.stderr))
    return done.stdout


def free_port(taken=()):
    """A port nobody listens on right now, not in `taken`. It is below the
    kernel's ephemeral range: a test's many client connections take
    ephemeral ports as their local ports, and one of them could hold a
    server's port just when the server restarts. Another process may still
    bind it first, so callers retry on a clash."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    while True:
        port = random.randrange(10000, low)
        if port in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def process_alive(pid):
    """Whether pid runs. A zombie counts as gone: on this machine PID 1 does
    not reap orphans, so a daemon that exited may stay a zombie forever."""
    try:
        with open("/proc/{}/stat".format(pid)) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        # Gone before the open, or (ESRCH) between the open and the read:
        # the 50-kill failover run met the second at kill 26.
        return False
    # The state follows the parenthesised command name, which may hold spaces.
    return stat[stat.rindex(")") + 2] not in "ZX"


def process_name(pid):
    try:
        with open("/proc/{}/comm".format(pid)) as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def wait_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def read_pidfile(data_dir):
    """(pid, port) from DATA/postmaster.pid if a postmaster runs there, else
    None. The name check keeps a stale file whose PID was reused by another
    program from making us signal that program."""
    try:
        with open(os.path.join(data_dir, "postmaster.pid")) as f:
            lines = f.read().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    if process_alive(pid) and process_name(pid) == "postgres":
        return pid, port
    return None


def remove_if_present(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_shared_memory(data_dir):
    """Removes the System V segment of the killed postmaster whose
    postmaster.pid is still in data_dir: a postmaster that does not exit
    cleanly leaves it (a restart on the same directory would reuse it, but
    this directory is going away)."""
    try:
        with open(os.path.join(data_dir, "postmaster.pid")) as f:
            shmid = f.read().splitlines()[6].split()[1]
    except (FileNotFoundError, IndexError):
        return
    subprocess.run(["ipcrm", "-m", shmid], stdin=subprocess.DEVNULL,
                   capture_output=True)


def conninfo(port, dbname="postgres"):
    return "host=127.0.0.1 port={} user=postgres dbname={}".format(port, dbname)


def wait_accepting(port, timeout=60):
    """Until a real query succeeds: pg_isready alone also passes while the
    server still refuses sessions during recovery."""
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(
            [PG_BIN + "/psql", "-X", "-At", "-d", conninfo(port), "-c", "SELECT 1"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd="/",
            env=dict(os.environ, PGCONNECT_TIMEOUT="2"))
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise ServerError("no connection to port {} within {} s: {}".format(
                port, timeout, done.stderr.strip()))
        time.sleep(0.1)


def reachable_by_postgres(path):
    """Whether the postgres user may enter every directory above path (always
    true when we are not root: then we run PostgreSQL ourselves)."""
    if os.geteuid() != 0:
        return True
    entry = pwd.getpwnam("postgres")
    groups = set(os.getgrouplist("postgres", entry.pw_gid))
    parent = os.path.dirname(path)
    while True:
        st = os.stat(parent)
        if not (st.st_mode & 0o001 or (st.st_uid == entry.pw_uid and st.st_mode & 0o100)
                or (st.st_gid in groups and st.st_mode & 0o010)):
            return False
        if parent == "/":
            return True
        parent = os.path.dirname(parent)


def place_data_dir(data_dir):
    """The directory PostgreSQL is to use for DIR. DIR itself when the
    postgres user can reach it; otherwise (a clone in a `mktemp -d`
    directory, mode 700, say) a fresh directory under /tmp, and DIR becomes a
    symlink to it, so that a later start or stop finds it."""
    if os.path.islink(data_dir):
        if os.path.exists(data_dir):
            return os.path.realpath(data_dir)
        os.unlink(data_dir)  # its target went (a reboot cleaned /tmp)
    os.makedirs(os.path.dirname(data_dir), exist_ok=True)
    if reachable_by_postgres(data_dir) or (os.path.isdir(data_dir) and
                                           os.listdir(data_dir)):
        return data_dir  # (start() checks a directory that is not empty)
    if os.path.isdir(data_dir):
        os.rmdir(data_dir)
    outside = tempfile.mkdtemp(prefix=OUTSIDE_PREFIX)
    os.chmod(outside, 0o755)
    os.symlink(os.path.join(outside, "data"), data_dir)
    return os.path.join(outside, "data")


def initdb(data_dir, listen):
    if len(data_dir) > MAX_SOCKET_DIR:
        raise ServerError("{}: too long for a unix socket directory (at most {} "
                          "bytes)".format(data_dir, MAX_SOCKET_DIR))
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    os.chmod(data_dir, 0o700)
    chown_to_postgres(data_dir)
    run_as_postgres([PG_BIN + "/initdb", "-D", data_dir, "-U", "postgres",
                     "--auth=trust", "--encoding=UTF8", "--locale=C"])
    with open(os.path.join(data_dir, "postgresql.conf"), "a") as f:
        f.write(SERVER_SETTINGS.format(socket_dir=data_dir, listen=listen))
    if listen != "127.0.0.1":
        # initdb trusts loopback only; trust the other addresses' subnets.
        with open(os.path.join(data_dir, "pg_hba.conf"), "a") as f:
            f.write("host all all samenet trust\n")


def start(data_dir, attempts=5, listen="127.0.0.1"):
    """Starts (or finds running) the server of data_dir, initialising it
    first if needed; returns its conninfo. `listen`: PostgreSQL's
    listen_addresses, set when the directory is initialised; the conninfo
    is 127.0.0.1's, which it must include."""
    data_dir = place_data_dir(os.path.abspath(data_dir))
    running = read_pidfile(data_dir)
    if running:
        wait_accepting(running[1])
        return conninfo(running[1])
    if not os.path.exists(os.path.join(data_dir, "PG_VERSION")):
        if os.path.isdir(data_dir) and os.listdir(data_dir):
            raise ServerError(data_dir + ": neither empty nor a PostgreSQL data "
                              "directory")
        initdb(data_dir, listen)
    # No postmaster runs here, so a postmaster.pid is left by a crash. Its
    # PID may be an unreaped zombie, which PostgreSQL takes for a live
    # postmaster and refuses to start: remove the file, as a reboot would.
    remove_if_present(os.path.join(data_dir, "postmaster.pid"))
    log = os.path.join(data_dir, "server.log")
    for attempt in range(attempts):
        port = free_port()
        try:
            run_as_postgres([PG_BIN + "/pg_ctl", "start", "-w", "-t", "60",
                             "-D", data_dir, "-l", log, "-o", "-p {}".format(port)])
        except ServerError:
            # Another process took the port between free_port() and the
            # bind; the log says so. Anything else fails every attempt.
            if attempt == attempts - 1:
                with open(log) as f:
                    raise ServerError("PostgreSQL did not start; the end of "
                                      "{}:\n{}".format(log, f.read()[-3000:]))
            continue
        wait_accepting(port)
        return conninfo(port)


def stop(data_dir, timeout=60):
    """Fast shutdown of data_dir's server, then removes data_dir (and, when it
    is a symlink placed by start(), the directory it points to)."""
    data_dir = os.path.abspath(data_dir)
    if not os.path.lexists(data_dir):
        return
    real_dir = os.path.realpath(data_dir)
    running = read_pidfile(real_dir)
    if running:
        pid = running[0]
        os.kill(pid, signal.SIGINT)  # fast shutdown: ends sessions, checkpoints
        if not wait_gone(pid, timeout):
            os.kill(pid, signal.SIGQUIT)  # immediate: no checkpoint
            if not wait_gone(pid, 10):
                os.kill(pid, signal.SIGKILL)
                wait_gone(pid, 10)
            remove_shared_memory(real_dir)
            print("postgres_server.py: {} did not stop within {} s; killed".format(
                pid, timeout), file=sys.stderr)
    if os.path.islink(data_dir):
        os.unlink(data_dir)
        outside = os.path.dirname(real_dir)
        if os.path.basename(outside).startswith(OUTSIDE_PREFIX):
            real_dir = outside
    if os.path.exists(real_dir):
        shutil.rmtree(real_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start_cmd = sub.add_parser("start", help="start (or reuse) the server")
    start_cmd.add_argument("--dir", required=True, help="data directory")
    start_cmd.add_argument("--dsn_file", required=True,
                           help="where to write the libpq conninfo")
    start_cmd.add_argument("--listen", default="127.0.0.1",
                           help="listen_addresses (default 127.0.0.1, which "
                           "it must include)")
    stop_cmd = sub.add_parser("stop", help="stop the server and remove --dir")
    stop_cmd.add_argument("--dir", required=True, help="data directory")
    args = parser.parse_args()
    try:
        if args.command == "start":
            dsn = start(args.dir, listen=args.listen)
            with open(args.dsn_file + ".tmp", "w") as f:
                f.write(dsn + "\n")
            os.replace(args.dsn_file + ".tmp", args.dsn_file)
            print(dsn)
        else:
            stop(args.dir)
    except (ServerError, OSError, subprocess.SubprocessError) as e:
        print("postgres_server.py {}: {}".format(args.command, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
