#!/usr/bin/python3
"""patroni_cluster.py — three PostgreSQL 15 nodes under Patroni, for tests.

    with PatroniCluster() as cluster:        # etcd, 3 nodes, database idemkey
        dsn = cluster.dsn()                  # multi-host, target_session_attrs=read-write
        old, _ = cluster.leader()
        cluster.kill_node(old)               # kill -9: the machine dies
        new, seconds = cluster.wait_for_new_leader(old, timeout=60)
        cluster.restart_node(old)            # rejoins as a replica
        cluster.wait_healthy(timeout=120)

By hand: `patroni_cluster.py up` runs a cluster until Ctrl-C (it prints the
DSN and the nodes); `patroni_cluster.py down [--dir DIR]` kills what an `up`
or a test that was itself killed -9 left behind. Patroni and etcd die with
the harness (PR_SET_PDEATHSIG); SIGTERM and SIGHUP unwind it through stop().

Everything listens on 127.0.0.1, on ports outside the kernel's ephemeral
range, with the unix sockets in the cluster's temporary directory. The DCS
is one etcd 3.4 node reached through Patroni's etcd3 module (the v3 API over
etcd's JSON gateway, so neither etcd's --enable-v2 nor a gRPC library is
needed); its data lives in /dev/shm because it stands for a DCS on other
machines: its fsyncs must not queue behind PostgreSQL's on the one disk here,
or a slow leader-key refresh demotes a healthy primary. The PostgreSQL data
stays on disk with fsync on.

Replication: synchronous_mode with synchronous_mode_strict, one synchronous
standby: a commit is acknowledged once a standby has flushed it, and only
that standby may be promoted, so a failover loses no acknowledged commit.
With no standby left, strict mode blocks commits rather than accept them on
one copy.

This process makes itself the "child subreaper" and reaps the postmasters
it inherits: Patroni's postmasters are orphans, and PID 1 of this machine
does not reap orphans, so an exited postmaster would stay a zombie that
Patroni (psutil) and PostgreSQL (kill(pid, 0)) both take for a live server.
"""

import argparse
import ctypes
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import psycopg2
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "support"))
import postgres_server  # noqa: E402  (tests/support)
from postgres_server import PG_BIN, process_alive  # noqa: E402

SCOPE = "idemkey"
STATE_FILE = "cluster.json"
DIR_PREFIX = "idemkey-patroni-"

# Failover timing (tests/failover/README.md says how they were chosen).
# Patroni needs loop_wait + 2 * retry_timeout <= ttl.
TTL = 6
LOOP_WAIT = 1
RETRY_TIMEOUT = 2

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


class ClusterError(Exception):
    pass


def die_with_parent():
    """preexec_fn: the child gets SIGKILL when the thread that started it
    ends, so a harness killed -9 takes its daemons along. Start daemons from
    the main thread only."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def unused_port(taken):
    port = postgres_server.free_port(taken)
    taken.add(port)
    return port


def proc_table():
    """{pid: (ppid, state, comm)} of every process."""
    table = {}
    for stat_path in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat_path) as f:
                stat = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        pid = int(stat_path.split("/")[2])
        close = stat.rindex(")")
        fields = stat[close + 2:].split()
        table[pid] = (int(fields[1]), fields[0], stat[stat.index("(") + 1:close])
    return table


def serves(pid, marker):
    """Whether pid is PostgreSQL, Patroni or etcd with marker (a directory of
    the cluster) in its command line. Only these programs: a shell or a
    `tail -f` of a node's log mentions the directory too."""
    try:
        exe = os.readlink("/proc/{}/exe".format(pid))
        with open("/proc/{}/cmdline".format(pid), "rb") as f:
            argv = f.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    ours = exe.startswith(PG_BIN + "/") or exe == "/usr/bin/etcd" or \
        argv[1:2] == [b"/usr/bin/patroni"]
    return ours and any(marker.encode() in arg for arg in argv)


def kill_all_at_once(roots, marker):
    """SIGKILLs roots, every program of the cluster whose command line names
    marker (a node's directory: its postmaster, pg_rewind, pg_basebackup,
    initdb, Patroni) and all their descendants, as one instant: each is
    SIGSTOPped as it is found, so nothing forks or writes between the first
    kill and the last. Returns the pids killed."""
    table = proc_table()
    found = {p for p in roots if p in table}
    found |= {p for p in table if serves(p, marker)}
    stopped = set()
    while found - stopped:
        for pid in found - stopped:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
            stopped.add(pid)
        table = proc_table()
        found |= {p for p, (ppid, _, _) in table.items() if ppid in stopped}
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return stopped


class Reaper:
    """Makes this process the subreaper of its descendants and reaps, in a
    thread, the orphans it inherits that no Popen waits for: postgres
    processes always (Patroni starts each postmaster through a helper that
    exits), and the pids handed to adopt() (what a node's kill left)."""

    def __init__(self):
        if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
        self._adopted = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reaper", daemon=True)
        self._thread.start()

    def adopt(self, pids):
        with self._lock:
            self._adopted |= set(pids)

    def close(self):
        self._stop.set()
        self._thread.join()

    def _run(self):
        me = os.getpid()
        while not self._stop.wait(0.1):
            for pid, (ppid, state, comm) in proc_table().items():
                if ppid != me or state != "Z":
                    continue
                with self._lock:
                    ours = comm == "postgres" or pid in self._adopted
                    self._adopted.discard(pid)
                if ours:
                    try:
                        os.waitpid(pid, 0)
                    except ChildProcessError:
                        pass


class Node:
    """One machine: a Patroni process and the PostgreSQL it runs."""

    def __init__(self, name, base_dir, pg_port, api_port):
        self.name = name
        self.dir = os.path.join(base_dir, name)
        self.data_dir = os.path.join(self.dir, "data")
        self.pg_port = pg_port
        self.api_port = api_port
        self.config_path = os.path.join(self.dir, "patroni.yml")
        self.log_path = os.path.join(self.dir, "patroni.log")
        self.proc = None  # the Patroni process while it runs

    @property
    def api_url(self):
        return "http://127.0.0.1:{}".format(self.api_port)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars=4000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-chars:]
        except FileNotFoundError:
            return ""


class PatroniCluster:
    """See the module docstring. Every method that waits raises ClusterError
    with the state it saw when its timeout passes."""

    def __init__(self, nodes=3, ttl=TTL, loop_wait=LOOP_WAIT,
                 retry_timeout=RETRY_TIMEOUT, database="idemkey"):
        self.ttl, self.loop_wait, self.retry_timeout = ttl, loop_wait, retry_timeout
        self.database = database
        self.base_dir = tempfile.mkdtemp(prefix=DIR_PREFIX)
        # postgres must reach its node directories.
        os.chmod(self.base_dir, 0o755)
        self.etcd_dir = tempfile.mkdtemp(prefix=DIR_PREFIX + "etcd-", dir="/dev/shm")
        taken = set()
        self.etcd_client_port = unused_port(taken)
        self.etcd_peer_port = unused_port(taken)
        self.nodes = {}
        for i in range(1, nodes + 1):
            name = "node{}".format(i)
            self.nodes[name] = Node(name, self.base_dir, unused_port(taken),
                                    unused_port(taken))
        self.etcd = None
        self.killed_at = {}  # node name -> time.monotonic() of its kill
        self.reaper = Reaper()
        # A test stopped by SIGTERM or SIGHUP (ctest's timeout, a closed
        # terminal) unwinds through stop() as on Ctrl-C instead of dying
        # with the servers left running.
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(sig) == signal.SIG_DFL:
                    signal.signal(sig, signal.default_int_handler)

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=180):
        """Starts etcd and every node, waits until all nodes stream from the
        leader with one synchronous standby, then creates the database."""
        self._start_etcd()
        for node in self.nodes.values():
            os.makedirs(node.dir, mode=0o700)
            postgres_server.chown_to_postgres(node.dir)
            with open(node.config_path, "w") as f:
                yaml.safe_dump(self._patroni_config(node), f, sort_keys=False)
        for node in self.nodes.values():
            self._start_patroni(node)
        self.wait_healthy(timeout)
        self._create_database()

    def stop(self):
        """Stops everything (Patroni stops its PostgreSQL), kills what does not
        stop in time, and removes the directories. Safe to call twice."""
        try:
            for node in self.nodes.values():
                if node.running():
                    node.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            for node in self.nodes.values():
                if node.proc is not None:
                    try:
                        node.proc.wait(max(0.1, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        pass
                self._kill(node)
                postgres_server.remove_shared_memory(node.data_dir)
            if self.etcd is not None and self.etcd.poll() is None:
                self.etcd.send_signal(signal.SIGTERM)
                try:
                    self.etcd.wait(10)
                except subprocess.TimeoutExpired:
                    self.etcd.kill()
                    self.etcd.wait()
        finally:
            self.reaper.close()
            shutil.rmtree(self.base_dir, ignore_errors=True)
            shutil.rmtree(self.etcd_dir, ignore_errors=True)

    def _write_state(self):
        """What `down` needs to clean up after a harness that was killed."""
        state = {"harness_pid": os.getpid(), "etcd_dir": self.etcd_dir,
                 "etcd_pid": self.etcd.pid if self.etcd else None,
                 "nodes": {n.name: {"dir": n.dir, "patroni_pid": n.proc.pid if n.proc else None}
                           for n in self.nodes.values()}}
        with open(os.path.join(self.base_dir, STATE_FILE + ".tmp"), "w") as f:
            json.dump(state, f)
        os.replace(os.path.join(self.base_dir, STATE_FILE + ".tmp"),
                   os.path.join(self.base_dir, STATE_FILE))

    def _start_etcd(self):
        client = "http://127.0.0.1:{}".format(self.etcd_client_port)
        peer = "http://127.0.0.1:{}".format(self.etcd_peer_port)
        log = open(os.path.join(self.base_dir, "etcd.log"), "wb")
        with log:
            self.etcd = subprocess.Popen(
                ["/usr/bin/etcd", "--name", "etcd0", "--data-dir", self.etcd_dir,
                 "--listen-client-urls", client, "--advertise-client-urls", client,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", "etcd0=" + peer,
                 "--initial-cluster-state", "new",
                 "--initial-cluster-token", os.path.basename(self.base_dir),
                 "--logger", "zap", "--log-level", "warn"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.base_dir,
                preexec_fn=die_with_parent)
        self._write_state()
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(client + "/health", timeout=1) as r:
                    if json.load(r).get("health") == "true":
                        return
            except (OSError, ValueError):
                pass
            if self.etcd.poll() is not None or time.monotonic() > deadline:
                with open(os.path.join(self.base_dir, "etcd.log"), errors="replace") as f:
                    raise ClusterError("etcd did not start:\n" + f.read()[-3000:])
            time.sleep(0.1)

    def _patroni_config(self, node):
        hba = ["local all all trust",
               "host all all 127.0.0.1/32 trust",
               "host replication all 127.0.0.1/32 trust"]
        user = {"username": "postgres"}
        return {
            "scope": SCOPE,
            "name": node.name,
            "restapi": {"listen": "127.0.0.1:{}".format(node.api_port),
                        "connect_address": "127.0.0.1:{}".format(node.api_port)},
            "etcd3": {"hosts": "127.0.0.1:{}".format(self.etcd_client_port)},
            "bootstrap": {
                "dcs": {
                    "ttl": self.ttl,
                    "loop_wait": self.loop_wait,
                    "retry_timeout": self.retry_timeout,
                    "synchronous_mode": True,
                    "synchronous_mode_strict": True,
                    "synchronous_node_count": 1,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "use_slots": True,
                        "parameters": {
                            "synchronous_commit": "on",
                            "fsync": "on",
                            "wal_log_hints": "on",  # pg_rewind needs it
                            "max_connections": 300,
                            "shared_buffers": "128MB",
                            "max_wal_senders": 10,
                            "max_replication_slots": 10,
                            # Segments in the data directory, not /dev/shm:
                            # a node killed -9 and then cloned afresh would
                            # leave its /dev/shm segments behind.
                            "dynamic_shared_memory_type": "mmap",
                            # After its primary is gone a standby retries
                            # streaming this often (default 5 s), and commits
                            # wait for one in strict mode: this delay adds to
                            # every failover.
                            "wal_retrieve_retry_interval": "500ms",
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}],
                "pg_hba": hba,
            },
            "postgresql": {
                "listen": "127.0.0.1:{}".format(node.pg_port),
                "connect_address": "127.0.0.1:{}".format(node.pg_port),
                "data_dir": node.data_dir,
                "bin_dir": PG_BIN,
                "pgpass": os.path.join(node.dir, "pgpass"),
                "authentication": {"superuser": user, "replication": user, "rewind": user},
                "parameters": {"unix_socket_directories": node.dir},
                "pg_hba": hba,
                # A spread checkpoint would make each base backup wait for
                # most of checkpoint_timeout.
                "basebackup": [{"checkpoint": "fast"}],
                # A node that cannot rewind or follow the new timeline is
                # cloned afresh rather than left out of the cluster.
                "remove_data_directory_on_rewind_failure": True,
                "remove_data_directory_on_diverged_timelines": True,
            },
            "watchdog": {"mode": "off"},
        }

    def _start_patroni(self, node):
        with open(node.log_path, "ab") as log:
            node.proc = subprocess.Popen(
                ["/usr/bin/patroni", node.config_path], stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, cwd=node.dir, preexec_fn=die_with_parent,
                **postgres_server.postgres_user_kwargs())
        self._write_state()

    def _kill(self, node):
        """kill -9 of everything of node at one instant; returns once gone."""
        roots = [node.proc.pid] if node.running() else []
        killed = kill_all_at_once(roots, node.dir + "/")
        self.reaper.adopt(p for p in killed if node.proc is None or p != node.proc.pid)
        if node.proc is not None:
            node.proc.wait()
        for pid in killed:
            if not postgres_server.wait_gone(pid, 10):
                raise ClusterError("{}: pid {} survived SIGKILL".format(node.name, pid))

    # -- failures ----------------------------------------------------------

    def kill_node(self, name):
        """The machine of node `name` dies: SIGKILL to its Patroni, its
        postmaster and every process of either, at once."""
        node = self.nodes[name]
        self._kill(node)
        self.killed_at[name] = time.monotonic()
        node.proc = None

    def restart_node(self, name):
        """Boots the dead machine again: Patroni restarts on the same data,
        finds another leader and rejoins it as a replica (pg_rewind, or a new
        base backup if the rewind fails)."""
        node = self.nodes[name]
        if node.running():
            raise ClusterError(name + " is running")
        # As after a reboot: the dead postmaster's PID means nothing now.
        postgres_server.remove_if_present(os.path.join(node.data_dir, "postmaster.pid"))
        self._start_patroni(node)
        self.killed_at.pop(name, None)

    # -- state ---------------------------------------------------------------

    def _get(self, node, path):
        """(HTTP status, parsed JSON body) of a REST API GET; (None, None) when
        the node does not answer."""
        try:
            with urllib.request.urlopen(node.api_url + path, timeout=2) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            try:
                return e.code, json.load(e)
            except ValueError:
                return e.code, None
        except (OSError, ValueError):
            return None, None

    def members(self):
        """The `GET /cluster` member list from the first running node that
        answers, or []."""
        for node in self.nodes.values():
            if node.running():
                status, body = self._get(node, "/cluster")
                if status == 200 and body:
                    return body.get("members", [])
        return []

    def leader(self):
        """(name, pg_port) of the node that holds the leader key and runs as
        primary (its `GET /primary` answers 200), or None."""
        for member in self.members():
            if member["role"] == "leader" and member["state"] == "running":
                node = self.nodes[member["name"]]
                if node.running() and self._get(node, "/primary")[0] == 200:
                    return node.name, node.pg_port
        return None

    def dsn(self, dbname=None):
        """Multi-host conninfo: libpq tries the nodes in turn and keeps the
        one that accepts writes."""
        nodes = list(self.nodes.values())
        return ("host={} port={} user=postgres dbname={} "
                "target_session_attrs=read-write connect_timeout=2").format(
                    ",".join("127.0.0.1" for _ in nodes),
                    ",".join(str(n.pg_port) for n in nodes), dbname or self.database)

    def node_dsn(self, name, dbname="postgres"):
        return postgres_server.conninfo(self.nodes[name].pg_port, dbname)

    def replication(self, name):
        """pg_stat_replication on node `name`: [(application_name, state,
        sync_state)]."""
        with psycopg2.connect(self.node_dsn(name), connect_timeout=2) as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT application_name, state, sync_state "
                            "FROM pg_stat_replication")
                rows = cur.fetchall()
        conn.close()
        return rows

    def health(self, members=None):
        """None when healthy, else what is missing. Healthy: a leader runs as
        primary; in its pg_stat_replication the standby that `GET /cluster`
        names sync_standby streams as `sync`; and `members` nodes (default:
        all that are not killed) are up, the others all streaming."""
        if members is None:
            members = sum(1 for n in self.nodes.values() if n.running())
        leader = self.leader()
        if leader is None:
            return "no leader; members: {}".format(self.members())
        view = self.members()
        # pg_stat_replication alone is not enough: a node that rejoins may
        # stream for a moment before Patroni stops it to rewind.
        settling = [m["name"] for m in view
                    if self.nodes[m["name"]].running() and m["state"] != "running"]
        if settling:
            return "not running yet: {}; members: {}".format(settling, view)
        sync = {m["name"] for m in view if m["role"] == "sync_standby"}
        try:
            rows = self.replication(leader[0])
        except psycopg2.Error as e:
            return "leader {}: {}".format(leader[0], str(e).strip())
        streaming = {name for name, state, _ in rows if state == "streaming"}
        in_sync = {name for name, state, s in rows if state == "streaming" and s == "sync"}
        if not sync & in_sync:
            return "leader {}: no synchronous standby streaming (sync_standby {}, " \
                   "pg_stat_replication {})".format(leader[0], sorted(sync), rows)
        if len(streaming) < members - 1:
            return "leader {}: {} of {} standbys streaming ({})".format(
                leader[0], len(streaming), members - 1, rows)
        return None

    # -- waits ---------------------------------------------------------------

    def wait_healthy(self, timeout=120, members=None):
        """Until health() is None; returns the seconds it took."""
        start = time.monotonic()
        while True:
            self._check_alive()
            problem = self.health(members)
            if problem is None:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise ClusterError("not healthy after {} s: {}\n{}".format(
                    timeout, problem, self._logs()))
            time.sleep(0.2)

    def wait_for_new_leader(self, old, timeout=60):
        """Until a node other than `old` is primary; returns (name, seconds
        since `old` was killed, or since this call if it was not)."""
        start = self.killed_at.get(old, time.monotonic())
        while True:
            self._check_alive()
            leader = self.leader()
            if leader is not None and leader[0] != old:
                return leader[0], time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise ClusterError("no new leader {} s after {} died; members: {}\n{}".format(
                    timeout, old, self.members(), self._logs()))
            time.sleep(0.05)

    def _check_alive(self):
        """A Patroni process that exits by itself is a broken test setup."""
        for node in self.nodes.values():
            if node.proc is not None and node.proc.poll() is not None:
                raise ClusterError("{}: Patroni exited with {}:\n{}".format(
                    node.name, node.proc.returncode, node.log_tail()))
        if self.etcd.poll() is not None:
            raise ClusterError("etcd exited with {}".format(self.etcd.returncode))

    def save_logs(self, dest):
        """Copies etcd's and every node's Patroni log (PostgreSQL's is in it)
        to dest, for a failure to be read after stop() removed them."""
        os.makedirs(dest, exist_ok=True)
        shutil.copy(os.path.join(self.base_dir, "etcd.log"), dest)
        for node in self.nodes.values():
            if os.path.exists(node.log_path):
                shutil.copy(node.log_path, os.path.join(dest, node.name + ".log"))

    def timeline(self):
        """The leader's timeline per `GET /cluster`: one more per failover."""
        for member in self.members():
            if member["role"] == "leader":
                return member.get("timeline")
        return None

    def _logs(self):
        return "".join("--- {} ({}):\n{}\n".format(n.name, n.log_path, n.log_tail(2000))
                       for n in self.nodes.values())

    def _create_database(self, timeout=60):
        """Creates the database on the leader and waits until every replica
        has replayed it: libpq's multi-host fallback does not go on to the
        next host when one answers "database does not exist", so a replica
        without it would make a multi-host connection fail."""
        name, _ = self.leader()
        conn = psycopg2.connect(self.node_dsn(name), connect_timeout=5)
        try:
            conn.autocommit = True  # CREATE DATABASE refuses a transaction
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
                if cur.fetchone() is None:
                    cur.execute('CREATE DATABASE "{}"'.format(self.database))
        finally:
            conn.close()
        deadline = time.monotonic() + timeout
        for node in self.nodes.values():
            while True:
                try:
                    conn = psycopg2.connect(self.node_dsn(node.name, self.database),
                                            connect_timeout=2)
                    conn.close()
                    break
                except psycopg2.Error as e:
                    if time.monotonic() > deadline:
                        raise ClusterError("{}: database {} not replayed within {} s: {}".format(
                            node.name, self.database, timeout, str(e).strip()))
                    time.sleep(0.1)


# -- CLI -----------------------------------------------------------------


def down(base_dir):
    """Kills what the cluster in base_dir left (a harness killed -9 could not
    stop it) and removes its directories."""
    with open(os.path.join(base_dir, STATE_FILE)) as f:
        state = json.load(f)
    for node in state["nodes"].values():
        roots = [node["patroni_pid"]] if node["patroni_pid"] else []
        kill_all_at_once(roots, node["dir"] + "/")
        postgres_server.remove_shared_memory(os.path.join(node["dir"], "data"))
    if state["etcd_pid"] and process_alive(state["etcd_pid"]):
        kill_all_at_once([state["etcd_pid"]], state["etcd_dir"])
    shutil.rmtree(state["etcd_dir"], ignore_errors=True)
    shutil.rmtree(base_dir, ignore_errors=True)


def orphaned_clusters():
    """Cluster directories whose harness no longer runs."""
    for base_dir in glob.glob(os.path.join(tempfile.gettempdir(), DIR_PREFIX + "*")):
        try:
            with open(os.path.join(base_dir, STATE_FILE)) as f:
                harness = json.load(f)["harness_pid"]
        except (OSError, ValueError, KeyError):
            continue
        if not process_alive(harness):
            yield base_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up_cmd = sub.add_parser("up", help="run a cluster until Ctrl-C or SIGTERM")
    up_cmd.add_argument("--ttl", type=int, default=TTL)
    up_cmd.add_argument("--loop_wait", type=int, default=LOOP_WAIT)
    up_cmd.add_argument("--retry_timeout", type=int, default=RETRY_TIMEOUT)
    down_cmd = sub.add_parser("down", help="clean up after a killed harness")
    down_cmd.add_argument("--dir", help="the cluster's directory (default: every "
                          "one in {} whose harness is gone)".format(tempfile.gettempdir()))
    args = parser.parse_args()
    if args.command == "down":
        for base_dir in [args.dir] if args.dir else list(orphaned_clusters()):
            down(base_dir)
            print("removed", base_dir)
        return 0
    with PatroniCluster(ttl=args.ttl, loop_wait=args.loop_wait,
                        retry_timeout=args.retry_timeout) as cluster:
        print("dir:    ", cluster.base_dir)
        print("dsn:    ", cluster.dsn())
        for node in cluster.nodes.values():
            print("{}:   postgres 127.0.0.1:{}  REST {}  log {}".format(
                node.name, node.pg_port, node.api_url, node.log_path))
        print("leader: ", cluster.leader()[0], "(Ctrl-C stops the cluster)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
