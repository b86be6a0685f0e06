#!/usr/bin/python3
"""k8s_manifests_test.py DIR — the Kubernetes manifests in DIR load and hang
together.

Every document of every DIR/*.yaml parses (PyYAML, Debian package
python3-yaml) and has apiVersion, kind and metadata.name. DIR holds two
workloads, and for each:

- the StatefulSet (idemkeyd.yaml, the RocksDB backend) has one replica, a
  headless governing Service, a ClusterIP Service for clients, a
  volumeClaimTemplate mounted at /var/lib/idemkey, and a memory limit of at
  least --cache_mb + 256 MiB (the measurements in deploy/README.md);
- the Deployment (idemkeyd-postgres.yaml) runs --backend=postgres with
  several replicas, has no volume claim, no persistent volume, no --data_dir
  and nothing mounted at /var/lib/idemkey, takes --postgres_dsn as $(VAR)
  from an env var whose secretKeyRef names a key of a Secret defined in DIR
  (and the DSN there sets target_session_attrs=read-write), is selected by a
  headless Service that publishes only ready pods, spreads its pods over
  nodes (topology spread or anti-affinity on kubernetes.io/hostname), and
  has the StatefulSet's pod and container security contexts;
- both have liveness, readiness and startup probes (grpc: or exec idemctl
  health; exec when serving TLS, as grpc: probes speak plaintext only),
  resource requests and limits, a non-root, read-only, capability-free
  security context, a grace period above their --drain_timeout, and every
  Secret they mount or read defined in DIR (mounted read-only).

Every Service and PodDisruptionBudget selects the pods of exactly one of the
two workloads (targetPorts name that workload's container ports), each
workload has a PodDisruptionBudget, and the Deployment's lets one pod be
evicted. Neither workload's selector matches the other's pods.
"""
import glob
import os
import re
import sys

try:
    import yaml
except ImportError:
    print("FAIL: PyYAML is missing: apt-get install python3-yaml "
          "(bash scripts/dev.sh test installs it)")
    sys.exit(1)

failures = []


def check(ok, message):
    if not ok:
        failures.append(message)
    return ok


def load(directory):
    docs = []
    files = sorted(glob.glob(os.path.join(directory, "*.yaml")))
    check(files, f"no *.yaml in {directory}")
    for path in files:
        with open(path, encoding="utf-8") as f:
            try:
                loaded = list(yaml.safe_load_all(f))
            except yaml.YAMLError as e:
                check(False, f"{path}: does not parse: {e}")
                continue
        for i, doc in enumerate(loaded):
            if doc is None:  # an empty document (a leading ---)
                continue
            where = f"{os.path.basename(path)} document {i}"
            if not check(isinstance(doc, dict), f"{where}: not a mapping"):
                continue
            for field in ("apiVersion", "kind"):
                check(isinstance(doc.get(field), str) and doc[field],
                      f"{where}: no {field}")
            name = (doc.get("metadata") or {}).get("name")
            check(isinstance(name, str) and name, f"{where}: no metadata.name")
            print(f"{where}: {doc.get('apiVersion')} {doc.get('kind')} {name}")
            docs.append((where, doc))
    return docs


def quantity_mib(q):
    m = re.fullmatch(r"(\d+)(Mi|Gi)", str(q))
    if not m:
        return None
    return int(m.group(1)) * (1024 if m.group(2) == "Gi" else 1)


def duration_seconds(text):
    """Seconds of an absl duration flag ("10s", "1m30s", "500ms"), or None."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", text or "")
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * units[u] for n, u in parts)


def flag(args, name):
    for a in args:
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return None


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class Workload:
    def __init__(self, doc):
        self.doc = doc
        self.kind = doc.get("kind")
        self.name = doc.get("metadata", {}).get("name")
        self.spec = doc.get("spec", {})
        self.template = self.spec.get("template", {})
        self.labels = self.template.get("metadata", {}).get("labels", {})
        self.pod = self.template.get("spec", {})
        self.containers = self.pod.get("containers", [])
        self.container = self.containers[0] if self.containers else {}
        self.args = [str(a) for a in self.container.get("command", []) +
                     self.container.get("args", [])]
        self.label = f"{self.kind} {self.name}"

    def selects_own_pods(self):
        return selects(self.spec.get("selector", {}).get("matchLabels"),
                       self.labels)


def check_pod(w, secrets):
    """What both workloads must have."""
    check(w.selects_own_pods(), f"{w.label}: selector does not match the pod labels")
    drain = duration_seconds(flag(w.args, "drain_timeout") or "10s")
    check(drain is not None, f"{w.label}: --drain_timeout is not a duration")
    grace = w.pod.get("terminationGracePeriodSeconds", 30)
    check(drain is not None and grace > drain,
          f"{w.label}: terminationGracePeriodSeconds ({grace}) must exceed "
          f"--drain_timeout ({flag(w.args, 'drain_timeout') or '10s'})")
    psc = w.pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, f"{w.label}: pod securityContext: runAsNonRoot")

    if not check(len(w.containers) == 1, f"{w.label}: expected one container"):
        return
    c = w.container
    tls = flag(w.args, "tls_cert") is not None
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        p = c.get(probe)
        if check(isinstance(p, dict), f"{w.label}: container: no {probe}"):
            check(any(k in p for k in ("grpc", "exec")),
                  f"{w.label}: {probe}: must be a grpc: probe or exec idemctl health")
            check(not (tls and "grpc" in p),
                  f"{w.label}: {probe}: a grpc: probe speaks plaintext only, "
                  "and idemkeyd serves TLS here (--tls_cert): exec idemctl health")
            if "exec" in p:
                cmd = p["exec"].get("command", [])
                check(len(cmd) >= 2 and cmd[0].endswith("idemctl")
                      and cmd[1] == "health",
                      f"{w.label}: {probe}: exec probe must run idemctl health")
                check(not tls or any(a.startswith("--cacert=") for a in cmd),
                      f"{w.label}: {probe}: under TLS idemctl health needs --cacert")
    res = c.get("resources", {})
    for part in ("requests", "limits"):
        for what in ("cpu", "memory"):
            check(what in res.get(part, {}),
                  f"{w.label}: resources.{part}.{what} missing")
    sc = c.get("securityContext", {})
    check(sc.get("readOnlyRootFilesystem") is True,
          f"{w.label}: container securityContext: readOnlyRootFilesystem")
    check(sc.get("allowPrivilegeEscalation") is False,
          f"{w.label}: container securityContext: allowPrivilegeEscalation false")
    check("ALL" in sc.get("capabilities", {}).get("drop", []),
          f"{w.label}: container securityContext: capabilities.drop ALL")

    claims = w.spec.get("volumeClaimTemplates", [])
    claim_names = {cl.get("metadata", {}).get("name") for cl in claims}
    mounts = {m.get("name"): m for m in c.get("volumeMounts", [])}
    volumes = {v.get("name"): v for v in w.pod.get("volumes", [])}
    for name in mounts:
        check(name in volumes or name in claim_names,
              f"{w.label}: volumeMount {name} has no volume")
    for name, v in volumes.items():
        if "secret" in v:
            secret = v["secret"].get("secretName")
            check(secret in secrets, f"{w.label}: volume {name}: Secret "
                  f"{secret} is not defined in the manifests")
            for item in v["secret"].get("items", []):
                check(item.get("key") in secrets.get(secret, {}),
                      f"{w.label}: volume {name}: Secret {secret} has no key "
                      f"{item.get('key')}")
            check(mounts.get(name, {}).get("readOnly") is True,
                  f"{w.label}: Secret volume {name} must be mounted readOnly")
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            check(ref.get("key") in secrets.get(ref.get("name"), {}),
                  f"{w.label}: env {e.get('name')}: Secret {ref.get('name')} "
                  f"with key {ref.get('key')} is not defined in the manifests")


def check_statefulset(w):
    check(w.spec.get("replicas") == 1,
          "StatefulSet: replicas must be 1 (one RocksDB, no replication)")
    check(flag(w.args, "backend") in (None, "rocksdb"),
          "StatefulSet: it is the RocksDB deployment (no --backend=postgres)")
    cache_mb = int(flag(w.args, "cache_mb") or 512)
    write_mb = int(flag(w.args, "write_buffer_mb") or 128)
    check(write_mb < cache_mb, "--write_buffer_mb must be below --cache_mb")
    res = w.container.get("resources", {})
    limit = quantity_mib(res.get("limits", {}).get("memory"))
    check(limit is not None and limit >= cache_mb + 256,
          f"memory limit {res.get('limits', {}).get('memory')} must be at "
          f"least --cache_mb ({cache_mb} MiB) + 256 MiB")
    claims = w.spec.get("volumeClaimTemplates", [])
    check(claims, "StatefulSet: no volumeClaimTemplates")
    claim_names = {cl.get("metadata", {}).get("name") for cl in claims}
    for cl in claims:
        check(cl.get("spec", {}).get("resources", {}).get("requests", {})
              .get("storage"), "volumeClaimTemplate: no storage request")
    data_mounts = [m for m in w.container.get("volumeMounts", [])
                   if m.get("name") in claim_names]
    check(any(m.get("mountPath") == "/var/lib/idemkey" for m in data_mounts),
          "the claim template must be mounted at /var/lib/idemkey")


def check_deployment(w, secrets, statefulset):
    check(flag(w.args, "backend") == "postgres",
          "Deployment: must run --backend=postgres (idemkeyd keeps no state "
          "there; RocksDB replicas would each be a separate store)")
    check(isinstance(w.spec.get("replicas"), int) and w.spec["replicas"] >= 2,
          "Deployment: several replicas (stateless over one database)")
    check("volumeClaimTemplates" not in w.spec,
          "Deployment: no volumeClaimTemplates (and a Deployment has none)")
    check(flag(w.args, "data_dir") is None,
          "Deployment: no --data_dir (the postgres backend has no data directory)")
    for v in w.pod.get("volumes", []):
        check(not any(k in v for k in ("persistentVolumeClaim", "hostPath",
                                       "ephemeral")),
              f"Deployment: volume {v.get('name')} keeps data on a volume")
    for m in w.container.get("volumeMounts", []):
        check(not m.get("mountPath", "").startswith("/var/lib/idemkey"),
              f"Deployment: volumeMount {m.get('name')} at {m.get('mountPath')}: "
              "no data directory here")
    dsn = flag(w.args, "postgres_dsn")
    m = re.fullmatch(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", dsn or "")
    if check(m, f"Deployment: --postgres_dsn must be $(VAR), from a Secret, "
             f"not {dsn!r}"):
        env = {e.get("name"): e for e in w.container.get("env", [])}
        ref = env.get(m.group(1), {}).get("valueFrom", {}).get("secretKeyRef")
        if check(ref, f"Deployment: env {m.group(1)} (--postgres_dsn) must "
                 "come from a secretKeyRef"):
            value = secrets.get(ref.get("name"), {}).get(ref.get("key"))
            if check(value is not None, f"Deployment: --postgres_dsn: Secret "
                     f"{ref.get('name')} key {ref.get('key')} is not defined"):
                check("target_session_attrs=read-write" in value,
                      "the DSN in the Secret must set "
                      "target_session_attrs=read-write (it finds the primary "
                      "after a failover)")
                check("password=" not in value,
                      "the DSN must hold no password (PGPASSWORD, from the "
                      "Secret, instead)")
    spread = [t for t in w.pod.get("topologySpreadConstraints", [])
              if t.get("topologyKey") == "kubernetes.io/hostname"]
    anti = w.pod.get("affinity", {}).get("podAntiAffinity", {})
    terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution", []) + [
        t.get("podAffinityTerm", {}) for t in
        anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])]
    terms = [t for t in terms if t.get("topologyKey") == "kubernetes.io/hostname"]
    check(any(selects(t.get("labelSelector", {}).get("matchLabels"), w.labels)
              for t in spread + terms),
          "Deployment: no topology spread or anti-affinity over "
          "kubernetes.io/hostname selecting its pods")
    if statefulset is not None:
        check(w.pod.get("securityContext") == statefulset.pod.get("securityContext"),
              "Deployment: pod securityContext differs from the StatefulSet's")
        check(w.container.get("securityContext")
              == statefulset.container.get("securityContext"),
              "Deployment: container securityContext differs from the StatefulSet's")


def check_selection(by_kind, workloads):
    """Services and PDBs each select one workload's pods; returns
    {workload name: [Services]} and {workload name: [PDBs]}."""
    for a in workloads:
        for b in workloads:
            if a is not b:
                check(not selects(a.spec.get("selector", {}).get("matchLabels"),
                                  b.labels),
                      f"{a.label}: its selector matches the pods of {b.label}")
    services, pdbs = {}, {}
    for kind, found in (("Service", services), ("PodDisruptionBudget", pdbs)):
        for d in by_kind.get(kind, []):
            name = d["metadata"]["name"]
            selector = d.get("spec", {}).get("selector", {})
            if kind == "PodDisruptionBudget":
                selector = selector.get("matchLabels")
            chosen = [w for w in workloads if selects(selector, w.labels)]
            if check(len(chosen) == 1, f"{kind} {name} selects the pods of "
                     f"{len(chosen)} workloads ({[w.label for w in chosen]}), "
                     "not one"):
                found.setdefault(chosen[0].name, []).append(d)
    for w in workloads:
        ports = {p.get("name") for p in w.container.get("ports", [])}
        for s in services.get(w.name, []):
            for p in s.get("spec", {}).get("ports", []):
                check(p.get("targetPort") in ports,
                      f"Service {s['metadata']['name']}: targetPort "
                      f"{p.get('targetPort')} is not a container port name "
                      f"of {w.label}")
        check(pdbs.get(w.name), f"{w.label}: no PodDisruptionBudget selects its pods")
    return services, pdbs


def main():
    if len(sys.argv) != 2:
        print("usage: k8s_manifests_test.py DIR")
        return 2
    docs = load(sys.argv[1])
    by_kind = {}
    for _, doc in docs:
        by_kind.setdefault(doc.get("kind"), []).append(doc)
    secrets = {}
    for d in by_kind.get("Secret", []):
        keys = dict(d.get("stringData") or {})
        keys.update(d.get("data") or {})
        secrets[d["metadata"]["name"]] = {k: str(v) for k, v in keys.items()}

    sets = [Workload(d) for d in by_kind.get("StatefulSet", [])]
    deployments = [Workload(d) for d in by_kind.get("Deployment", [])]
    check(len(sets) == 1, f"expected one StatefulSet, found {len(sets)}")
    check(len(deployments) == 1,
          f"expected one Deployment (--backend=postgres), found {len(deployments)}")
    sts = sets[0] if sets else None
    workloads = sets + deployments
    for w in workloads:
        check_pod(w, secrets)
    if sts is not None:
        check_statefulset(sts)
    for w in deployments:
        check_deployment(w, secrets, sts)

    services, pdbs = check_selection(by_kind, workloads)
    all_services = {d["metadata"]["name"]: d for d in by_kind.get("Service", [])}
    if sts is not None:
        governing = all_services.get(sts.spec.get("serviceName"))
        if check(governing is not None,
                 f"serviceName {sts.spec.get('serviceName')} is not a Service here"):
            check(governing.get("spec", {}).get("clusterIP") == "None",
                  "the governing Service must be headless (clusterIP: None)")
            check(governing in services.get(sts.name, []),
                  "the governing Service does not select the StatefulSet's pods")
        check(any(s.get("spec", {}).get("clusterIP") != "None"
                  for s in services.get(sts.name, [])),
              "no ClusterIP Service for clients of the StatefulSet")
    for w in deployments:
        headless = [s for s in services.get(w.name, [])
                    if s.get("spec", {}).get("clusterIP") == "None"]
        check(headless, f"{w.label}: no headless Service (clusterIP: None) "
              "selects its pods: dns:/// would not resolve every replica")
        for s in headless:
            check(s["spec"].get("publishNotReadyAddresses") is not True,
                  f"Service {s['metadata']['name']}: publishNotReadyAddresses "
                  "would put draining and starting pods in DNS")
            check(any(p.get("targetPort") == "grpc"
                      for p in s["spec"].get("ports", [])),
                  f"Service {s['metadata']['name']}: no grpc port")
        replicas = w.spec.get("replicas", 1)
        for p in pdbs.get(w.name, []):
            pspec = p.get("spec", {})
            if "maxUnavailable" in pspec:
                ok = pspec["maxUnavailable"] not in (0, "0", "0%")
            else:
                ok = isinstance(pspec.get("minAvailable"), int) and \
                    pspec["minAvailable"] < replicas
            check(ok, f"PodDisruptionBudget {p['metadata']['name']}: must let "
                  f"one of the {replicas} replicas be evicted (a drain would "
                  "block for ever)")

    for f in failures:
        print("FAIL:", f)
    if failures:
        return 1
    print(f"PASS: {len(docs)} documents")
    return 0


if __name__ == "__main__":
    sys.exit(main())
