#!/usr/bin/python3
"""failover_test.py --idemkeyd PATH [--kills 5] [--writers 16]

Two idemkeyd replicas on one three-node Patroni cluster (patroni_cluster.py),
under write load from --writers threads, while the PostgreSQL leader's
machine is killed -9 --kills times (each time once the cluster is healthy
and writes flow; the dead node is restarted after the new leader serves).
Checked at the end, through Lookup, against a ledger of every answer the
writers were given (tests/failover/README.md):

  - every acknowledged Reserve (OWNER) is there with its token, IN_PROGRESS
    or COMPLETED; every acknowledged Complete is COMPLETED with exactly its
    bytes, and every COMPLETED record holds the bytes of its own owner;
  - no fencing token was given to two attempts, across keys and replicas;
  - per key, no two OWNERs while a lease holds (the contested keys: several
    writers Reserve one key at once), and tokens grow (the taken-over keys:
    an owner that stops heartbeating loses the key to a new attempt);
  - a retried Reserve (same attempt_id) got the same token.

A call that fails UNAVAILABLE or DEADLINE_EXCEEDED is in doubt; the writer
retries it unchanged (a Reserve with its attempt_id, a Complete with its
token), which is safe, until it is answered. Any other error is a
violation. Prints a line per kill and a summary; exit 0 pass, 1 violations,
2 when the cluster or idemkeyd cannot be set up (the logs are then kept and
their path printed). With --inject_loss one acknowledged record is deleted
in PostgreSQL before the check, which must then report exactly that loss.
"""

import argparse
import hashlib
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "client", "python", "src"))
sys.path.insert(0, HERE)

import grpc  # noqa: E402
import psycopg2  # noqa: E402
from google.protobuf import duration_pb2  # noqa: E402

from idemkey.v1 import idemkey_pb2 as pb  # noqa: E402
from idemkey.v1 import idemkey_pb2_grpc as pb_grpc  # noqa: E402
import patroni_cluster  # noqa: E402
from patroni_cluster import ClusterError, PatroniCluster  # noqa: E402

TENANT = "failover"
# Plain and contested keys hold their lease for the whole run: no lease may
# lapse, so a second OWNER of one of them is always a violation.
LONG_LEASE = duration_pb2.Duration(seconds=3600)
# The first owner of a taken-over key lets this lapse; the new attempt comes
# once it has.
SHORT_LEASE = duration_pb2.Duration(seconds=2)
TAKEOVER_AFTER = 2.5
CALL_TIMEOUT = 10  # seconds per attempt; a failover takes about 10
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# Every CONTEST_EVERY-th operation of a writer Reserves the key of the
# current CONTEST_WINDOW, so writers land on one key at about the same time.
CONTEST_EVERY = 5
CONTEST_WINDOW = 0.25
TAKEOVER_EVERY = 20


class SetupError(Exception):
    pass


class InDoubt(Exception):
    """The run ended while a call was still unanswered."""


def fingerprint(key):
    return hashlib.sha256(key.encode()).digest()


def body(key, token):
    """The response an owner stores: it names its key and its token, so a
    record holding another attempt's (or key's) bytes shows."""
    return "{}:{}".format(key, token).encode()


class Entry:
    """What the writers were told about one key."""

    def __init__(self, kind):
        self.kind = kind  # "plain", "contested" or "takeover"
        self.owners = []  # (attempt_id, token) of each OWNER, in answer order
        self.completed = []  # tokens of acknowledged Completes
        self.replays = []  # bodies of COMPLETED answers to other attempts
        self.in_doubt = False  # a call was still unanswered at the end


class Ledger:
    def __init__(self):
        self.entries = {}
        self.violations = []
        self.lock = threading.Lock()

    def entry(self, key, kind):
        with self.lock:
            return self.entries.setdefault(key, Entry(kind))

    def violation(self, text):
        with self.lock:
            self.violations.append(text)


class Progress:
    """When each replica last acknowledged a write, and the first write it
    acknowledged that was sent after `since` (the last kill)."""

    def __init__(self, replicas):
        self.lock = threading.Lock()
        self.last_ack = [0.0] * replicas
        self.since = None
        self.first_after = [None] * replicas

    def acked(self, replica, sent_at):
        now = time.monotonic()
        with self.lock:
            self.last_ack[replica] = now
            if self.since is not None and sent_at >= self.since and \
                    self.first_after[replica] is None:
                self.first_after[replica] = now

    def watch(self, since):
        with self.lock:
            self.since = since
            self.first_after = [None] * len(self.first_after)

    def resumed(self):
        """Per replica, seconds from `since` until it acknowledged again; None
        until every replica has."""
        with self.lock:
            if any(t is None for t in self.first_after):
                return None
            return [t - self.since for t in self.first_after]

    def flowing(self, within):
        now = time.monotonic()
        with self.lock:
            return all(now - t < within for t in self.last_ack)


class Writer(threading.Thread):
    """One client with its own channel to one replica: Reserve a new key,
    Complete it as its OWNER, in a loop; now and then a contested or a
    taken-over key instead."""

    def __init__(self, index, replica, address, ledger, progress, stop, give_up):
        super().__init__(name="writer-{}".format(index), daemon=True)
        self.index, self.replica = index, replica
        self.ledger, self.progress = ledger, progress
        self.stop, self.give_up = stop, give_up  # Events: no new ops; no more retries
        # A channel of its own: gRPC would otherwise share one connection
        # between channels to the same address.
        self.channel = grpc.insecure_channel(
            address, options=[("grpc.use_local_subchannel_pool", 1),
                              ("grpc.enable_retries", 0)])
        self.stub = pb_grpc.KeyServiceStub(self.channel)
        self.takeovers = []  # (due, key, first attempt's token), due first
        self.error = None

    def run(self):
        try:
            seq = 0
            while not self.stop.is_set():
                if self.takeovers and self.takeovers[0][0] <= time.monotonic():
                    self._take_over(*self.takeovers.pop(0)[1:])
                elif seq % CONTEST_EVERY == 0:
                    self._contest()
                elif seq % TAKEOVER_EVERY == 1:
                    self._start_takeover(seq)
                else:
                    self._plain(seq)
                seq += 1
            # Every abandoned key is taken over before the end, so the check
            # sees each one's second owner.
            while self.takeovers:
                due, key, token = self.takeovers.pop(0)
                time.sleep(max(0.0, due - time.monotonic()))
                self._take_over(key, token)
        except InDoubt:
            pass
        except Exception as e:  # a bug of this test: report it, fail the run
            self.error = e
        finally:
            self.channel.close()

    def _call(self, method, request, entry):
        """The answer once the call succeeds; None for an error that is not
        retried (recorded as a violation). The second result is when the
        answered attempt was sent."""
        while True:
            sent = time.monotonic()
            try:
                return method(request, timeout=CALL_TIMEOUT, wait_for_ready=True), sent
            except grpc.RpcError as e:
                if e.code() not in RETRYABLE:
                    self.ledger.violation("{} {}: {} {}".format(
                        type(request).__name__, request.key, e.code().name, e.details()))
                    return None, sent
                if self.give_up.is_set():
                    entry.in_doubt = True
                    raise InDoubt()
                time.sleep(0.05)

    def _reserve(self, key, attempt, lease, entry):
        req = pb.ReserveRequest(tenant=TENANT, key=key, fingerprint=fingerprint(key),
                                attempt_id=attempt, lease=lease)
        resp, sent = self._call(self.stub.Reserve, req, entry)
        if resp is not None and resp.outcome == pb.OUTCOME_OWNER:
            with self.ledger.lock:
                entry.owners.append((attempt, resp.fencing_token))
            self.progress.acked(self.replica, sent)
        return resp

    def _complete(self, key, token, entry):
        req = pb.CompleteRequest(tenant=TENANT, key=key, fencing_token=token,
                                 response=pb.StoredResponse(status_code=200,
                                                            body=body(key, token)))
        resp, sent = self._call(self.stub.Complete, req, entry)
        if resp is not None:
            with self.ledger.lock:
                entry.completed.append(token)
            self.progress.acked(self.replica, sent)

    def _plain(self, seq):
        key = "p-{}-{}".format(self.index, seq)
        entry = self.ledger.entry(key, "plain")
        resp = self._reserve(key, "a-" + key, LONG_LEASE, entry)
        if resp is None:
            return
        if resp.outcome != pb.OUTCOME_OWNER:
            self.ledger.violation("{}: the only attempt got {}".format(
                key, pb.Outcome.Name(resp.outcome)))
            return
        self._complete(key, resp.fencing_token, entry)

    def _contest(self):
        key = "c-{}".format(int(time.time() / CONTEST_WINDOW))
        entry = self.ledger.entry(key, "contested")
        resp = self._reserve(key, "w{}-{}".format(self.index, key), LONG_LEASE, entry)
        if resp is None:
            return
        if resp.outcome == pb.OUTCOME_OWNER:
            self._complete(key, resp.fencing_token, entry)
        elif resp.outcome == pb.OUTCOME_COMPLETED:
            with self.ledger.lock:
                entry.replays.append(resp.response.body)
        elif resp.outcome != pb.OUTCOME_IN_PROGRESS:
            self.ledger.violation("{}: {}".format(key, pb.Outcome.Name(resp.outcome)))

    def _start_takeover(self, seq):
        key = "t-{}-{}".format(self.index, seq)
        entry = self.ledger.entry(key, "takeover")
        resp = self._reserve(key, "first-" + key, SHORT_LEASE, entry)
        if resp is None:
            return
        if resp.outcome != pb.OUTCOME_OWNER:
            self.ledger.violation("{}: the first attempt got {}".format(
                key, pb.Outcome.Name(resp.outcome)))
            return
        self.takeovers.append((time.monotonic() + TAKEOVER_AFTER, key, resp.fencing_token))

    def _take_over(self, key, first_token):
        entry = self.ledger.entries[key]
        resp = self._reserve(key, "second-" + key, LONG_LEASE, entry)
        if resp is None:
            return
        if resp.outcome == pb.OUTCOME_IN_PROGRESS:
            # The first lease has not lapsed yet by the server's clock (a
            # retried first Reserve renews it): try again later.
            self.takeovers.append((time.monotonic() + 1, key, first_token))
            self.takeovers.sort()
        elif resp.outcome == pb.OUTCOME_OWNER:
            self._complete(key, resp.fencing_token, entry)
        else:
            self.ledger.violation("{}: the second attempt got {}".format(
                key, pb.Outcome.Name(resp.outcome)))


class Idemkeyd:
    """One idemkeyd replica on the cluster."""

    def __init__(self, path, dsn, work_dir, name):
        self.name = name
        self.port_file = os.path.join(work_dir, name + ".port")
        self.log_path = os.path.join(work_dir, name + ".log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [path, "--backend=postgres", "--postgres_dsn=" + dsn,
                 "--listen=127.0.0.1:0", "--port_file=" + self.port_file],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                preexec_fn=patroni_cluster.die_with_parent)
        deadline = time.monotonic() + 60
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SetupError("{} did not start:\n{}".format(name, self.log_tail()))
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.address = "127.0.0.1:" + f.read().strip()

    def log_tail(self, chars=3000):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-chars:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def lookup_all(address, keys):
    """{key: Record or None} through Batch Lookups, retried while the service
    is unavailable."""
    records = {}
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.KeyServiceStub(channel)
        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            req = pb.BatchRequest(ops=[pb.BatchOp(lookup=pb.LookupRequest(tenant=TENANT, key=k))
                                       for k in chunk])
            deadline = time.monotonic() + 120
            while True:
                try:
                    results = stub.Batch(req, timeout=30, wait_for_ready=True).results
                    break
                except grpc.RpcError as e:
                    if e.code() not in RETRYABLE or time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            for key, result in zip(chunk, results):
                if result.code == grpc.StatusCode.OK.value[0]:
                    records[key] = result.lookup.record
                elif result.code == grpc.StatusCode.NOT_FOUND.value[0]:
                    records[key] = None
                else:
                    raise RuntimeError("Lookup {}: code {} {}".format(key, result.code,
                                                                       result.message))
    return records


def check(ledger, records):
    """Checks every key's record against what its writers were told. Returns
    (acknowledged writes checked, of them lost or changed)."""
    checked = lost = 0
    token_owner = {}  # fencing token -> (key, attempt) it was given to
    v = ledger.violation

    def claim(token, key, attempt):
        other = token_owner.setdefault(token, (key, attempt))
        if other != (key, attempt):
            v("fencing token {} given to {} {} and to {} {}".format(
                token, other[0], other[1], key, attempt))

    for key, e in sorted(ledger.entries.items()):
        rec = records.get(key)
        attempts = {}
        for attempt, token in e.owners:
            if attempts.setdefault(attempt, token) != token:
                v("{}: retried Reserve of {} got token {}, first {}".format(
                    key, attempt, token, attempts[attempt]))
            claim(token, key, attempt)
        tokens = list(dict.fromkeys(t for _, t in e.owners))  # distinct, in order
        if e.kind != "takeover" and len(tokens) > 1:
            v("{}: {} OWNERs under one live lease: {}".format(key, len(tokens), e.owners))
        if e.kind == "takeover" and tokens != sorted(tokens):
            v("{}: tokens do not grow: {}".format(key, tokens))
        checked += len(attempts) + len(set(e.completed))
        if rec is not None:
            claim(rec.fencing_token, key, rec.attempt_id)
            if rec.state == pb.STATE_COMPLETED and \
                    rec.response.body != body(key, rec.fencing_token):
                v("{}: COMPLETED with {!r}, not its owner's bytes".format(key, rec.response.body))
        if tokens:
            if rec is None:
                v("{}: acknowledged {} lost (record absent)".format(
                    key, "Complete" if e.completed else "Reserve"))
                lost += 1
                continue
            # An unanswered Reserve of a later attempt may have taken the key.
            if rec.fencing_token != tokens[-1] and not (e.in_doubt and rec.fencing_token > tokens[-1]):
                v("{}: token {}, acknowledged {}".format(key, rec.fencing_token, tokens[-1]))
                lost += 1
                continue
        if e.completed:
            token = e.completed[-1]
            if rec is None or rec.state != pb.STATE_COMPLETED or rec.fencing_token != token \
                    or rec.response.body != body(key, token):
                v("{}: acknowledged Complete (token {}) lost: {}".format(
                    key, token, "absent" if rec is None else "{} token {} body {!r}".format(
                        pb.State.Name(rec.state), rec.fencing_token, rec.response.body)))
                lost += 1
        for replay in e.replays:
            if rec is None or replay != body(key, rec.fencing_token):
                v("{}: replayed {!r}, not the owner's response".format(key, replay))
    return checked, lost


def kill_leader(cluster, servers, progress):
    """Kills the leader's node once writes flow, waits for the new leader and
    for both replicas to acknowledge writes again, restarts the node and
    waits until it has rejoined. Returns (old, new, seconds to the new
    leader, seconds until each replica acknowledged writes again, seconds to
    rejoin)."""
    deadline = time.monotonic() + 60
    while not progress.flowing(0.5):
        if time.monotonic() > deadline:
            raise ClusterError("writes do not flow to both replicas")
        time.sleep(0.05)
    # Kills land at different moments of the load.
    time.sleep(random.uniform(0.5, 2.0))
    old, _ = cluster.leader()
    cluster.kill_node(old)
    killed = time.monotonic()
    progress.watch(killed)
    new, to_leader = cluster.wait_for_new_leader(old, 120)
    while progress.resumed() is None:
        for s in servers:
            if s.proc.poll() is not None:
                raise ClusterError("{} exited with {}:\n{}".format(
                    s.name, s.proc.returncode, s.log_tail()))
        if time.monotonic() - killed > 120:
            raise ClusterError("writes not acknowledged 120 s after the kill")
        time.sleep(0.02)
    cluster.restart_node(old)
    rejoined = cluster.wait_healthy(180, members=len(cluster.nodes))
    return old, new, to_leader, progress.resumed(), rejoined


def inject_loss(cluster, ledger):
    """Deletes the record of one acknowledged Complete behind idemkeyd's back,
    as a failover that lost it would; the check must then report it."""
    key = next(k for k, e in sorted(ledger.entries.items())
               if e.kind == "plain" and e.completed)
    leader, _ = cluster.leader()
    conn = psycopg2.connect(cluster.node_dsn(leader, cluster.database))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM idemkey_records WHERE key = %s", (key.encode(),))
            if cur.rowcount != 1:
                raise RuntimeError("--inject_loss: no row of {} in idemkey_records".format(key))
    finally:
        conn.close()
    print("injected loss: deleted {}/{} (acknowledged Complete)".format(TENANT, key))


def run(args, work_dir):
    ledger = Ledger()
    stop, give_up = threading.Event(), threading.Event()
    servers, writers = [], []
    to_leader, resumes = [], []
    cluster = None
    try:
        try:
            cluster = PatroniCluster(ttl=args.ttl, loop_wait=args.loop_wait,
                                     retry_timeout=args.retry_timeout)
            cluster.start()
            servers = [Idemkeyd(args.idemkeyd, cluster.dsn(), work_dir, "idemkeyd{}".format(i))
                       for i in range(2)]
        except (ClusterError, SetupError) as e:
            raise SetupError(str(e))
        progress = Progress(len(servers))
        writers = [Writer(i, i % len(servers), servers[i % len(servers)].address,
                          ledger, progress, stop, give_up) for i in range(args.writers)]
        for w in writers:
            w.start()
        first_timeline = cluster.timeline()
        for kill in range(1, args.kills + 1):
            old, new, leader_secs, resumed, rejoined = kill_leader(cluster, servers, progress)
            to_leader.append(leader_secs)
            resumes.append(max(resumed))
            with ledger.lock:
                keys, violations = len(ledger.entries), len(ledger.violations)
            print("kill {}/{}: {} -> {}: new leader after {:.1f} s, writes resumed after "
                  "{:.1f} s ({}), {} rejoined in {:.1f} s; {} keys, {} violations".format(
                      kill, args.kills, old, new, leader_secs, max(resumed),
                      ", ".join("{} {:.1f} s".format(s.name, t) for s, t in zip(servers, resumed)),
                      old, rejoined, keys, violations), flush=True)
        # Each kill moves the timeline on by one; more means Patroni failed
        # over by itself: the timings flap under this load.
        spurious = cluster.timeline() - first_timeline - args.kills
        stop.set()
        for w in writers:
            w.join(120)
        give_up.set()
        for w in writers:
            w.join()
            if w.error is not None:
                raise w.error
        if args.inject_loss:
            inject_loss(cluster, ledger)
        records = lookup_all(servers[0].address, sorted(ledger.entries))
        checked, lost = check(ledger, records)
        for s in servers:
            if s.proc.poll() is not None:
                ledger.violation("{} exited with {}".format(s.name, s.proc.returncode))
        for text in ledger.violations[:50]:
            print("  VIOLATION:", text)
        if len(ledger.violations) > 50:
            print("  ... and {} more".format(len(ledger.violations) - 50))
        ok = not ledger.violations
        print("failover: {} kills, {} writers, {} acknowledged writes checked, {} lost, "
              "{} violations, {} spurious failovers; new leader max {:.1f} s median {:.1f} s, "
              "resume max {:.1f} s median {:.1f} s: {}".format(
                  args.kills, args.writers, checked, lost, len(ledger.violations), spurious,
                  max(to_leader, default=0), statistics.median(to_leader or [0]),
                  max(resumes, default=0), statistics.median(resumes or [0]),
                  "PASS" if ok else "FAIL"))
        return ok
    finally:
        stop.set()
        give_up.set()
        for w in writers:
            w.join(CALL_TIMEOUT + 5)
        for s in servers:
            s.stop()
        if cluster is not None:
            cluster.save_logs(os.path.join(work_dir, "cluster"))
            cluster.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idemkeyd", required=True, help="the idemkeyd binary")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--ttl", type=int, default=patroni_cluster.TTL)
    parser.add_argument("--loop_wait", type=int, default=patroni_cluster.LOOP_WAIT)
    parser.add_argument("--retry_timeout", type=int, default=patroni_cluster.RETRY_TIMEOUT)
    parser.add_argument("--inject_loss", action="store_true",
                        help="delete one acknowledged record before the check, which "
                        "must then fail naming it (the check's own test)")
    parser.add_argument("--keep_logs", action="store_true",
                        help="keep the logs (idemkeyd's, Patroni's, etcd's) after a pass too")
    args = parser.parse_args()
    # ctest's timeout and Ctrl-C unwind through the finally blocks that stop
    # every process.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    work_dir = tempfile.mkdtemp(prefix="idemkey-failover-")
    # The logs are kept when something went wrong, which with --inject_loss
    # a single reported loss has not.
    expected = False
    try:
        ok = run(args, work_dir)
        expected = ok or args.inject_loss
        return 0 if ok else 1
    except SetupError as e:
        print("failover: setup failed: {}".format(e), file=sys.stderr)
        return 2
    except (ClusterError, grpc.RpcError, RuntimeError) as e:
        print("failover: FAIL: {}".format(e), file=sys.stderr)
        return 1
    finally:
        if expected and not args.keep_logs:
            shutil.rmtree(work_dir)
        else:
            print("failover: logs kept in " + work_dir, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
