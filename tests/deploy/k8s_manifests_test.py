#!/usr/bin/python3
"""k8s_manifests_test.py DIR — the Kubernetes manifests in DIR load and hang
together.

Every document of every DIR/*.yaml parses (PyYAML, Debian package
python3-yaml) and has apiVersion, kind and metadata.name. The StatefulSet has
one replica, a headless governing Service, liveness/readiness/startup probes,
resource requests and limits (memory limit >= --cache_mb + 256 MiB, from the
measurements in deploy/README.md), a volumeClaimTemplate mounted by the
container, a non-root, read-only, capability-free security context, and a
grace period above --drain_timeout. Services and the PodDisruptionBudget select
its pods, and every Secret it mounts is defined in DIR.
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


def flag(args, name):
    for a in args:
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return None


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_statefulset(docs):
    by_kind = {}
    for _, doc in docs:
        by_kind.setdefault(doc.get("kind"), []).append(doc)
    sets = by_kind.get("StatefulSet", [])
    if not check(len(sets) == 1, f"expected one StatefulSet, found {len(sets)}"):
        return
    sts = sets[0]
    spec = sts.get("spec", {})
    check(spec.get("replicas") == 1,
          "StatefulSet: replicas must be 1 (one RocksDB, no replication)")
    template = spec.get("template", {})
    labels = template.get("metadata", {}).get("labels", {})
    check(selects(spec.get("selector", {}).get("matchLabels"), labels),
          "StatefulSet: selector does not match the pod labels")
    pod = template.get("spec", {})
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(grace > 10, "StatefulSet: terminationGracePeriodSeconds must exceed "
          "--drain_timeout (10s) plus the flush")
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, "pod securityContext: runAsNonRoot")

    containers = pod.get("containers", [])
    if not check(len(containers) == 1, "StatefulSet: expected one container"):
        return
    c = containers[0]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        p = c.get(probe)
        if check(isinstance(p, dict), f"container: no {probe}"):
            check(any(k in p for k in ("grpc", "exec")),
                  f"{probe}: must be a grpc: probe or exec idemctl health")
            if "exec" in p:
                cmd = p["exec"].get("command", [])
                check(len(cmd) >= 2 and cmd[0].endswith("idemctl")
                      and cmd[1] == "health",
                      f"{probe}: exec probe must run idemctl health")
    res = c.get("resources", {})
    for part in ("requests", "limits"):
        for what in ("cpu", "memory"):
            check(what in res.get(part, {}), f"resources.{part}.{what} missing")
    args = c.get("args", [])
    cache_mb = int(flag(args, "cache_mb") or 512)
    write_mb = int(flag(args, "write_buffer_mb") or 128)
    check(write_mb < cache_mb, "--write_buffer_mb must be below --cache_mb")
    limit = quantity_mib(res.get("limits", {}).get("memory"))
    check(limit is not None and limit >= cache_mb + 256,
          f"memory limit {res.get('limits', {}).get('memory')} must be at "
          f"least --cache_mb ({cache_mb} MiB) + 256 MiB")
    sc = c.get("securityContext", {})
    check(sc.get("readOnlyRootFilesystem") is True,
          "container securityContext: readOnlyRootFilesystem")
    check(sc.get("allowPrivilegeEscalation") is False,
          "container securityContext: allowPrivilegeEscalation false")
    check("ALL" in sc.get("capabilities", {}).get("drop", []),
          "container securityContext: capabilities.drop ALL")

    claims = spec.get("volumeClaimTemplates", [])
    check(claims, "StatefulSet: no volumeClaimTemplates")
    claim_names = {cl.get("metadata", {}).get("name") for cl in claims}
    for cl in claims:
        check(cl.get("spec", {}).get("resources", {}).get("requests", {})
              .get("storage"), "volumeClaimTemplate: no storage request")
    mounts = {m.get("name"): m for m in c.get("volumeMounts", [])}
    data_mounts = [m for n, m in mounts.items() if n in claim_names]
    check(any(m.get("mountPath") == "/var/lib/idemkey" for m in data_mounts),
          "the claim template must be mounted at /var/lib/idemkey")
    volumes = {v.get("name"): v for v in pod.get("volumes", [])}
    for name, m in mounts.items():
        check(name in volumes or name in claim_names,
              f"volumeMount {name} has no volume")
    secrets = {d.get("metadata", {}).get("name") for d in by_kind.get("Secret", [])}
    for name, v in volumes.items():
        if "secret" in v:
            check(v["secret"].get("secretName") in secrets,
                  f"volume {name}: Secret {v['secret'].get('secretName')} "
                  "is not defined in the manifests")
            check(mounts.get(name, {}).get("readOnly") is True,
                  f"Secret volume {name} must be mounted readOnly")

    services = {d["metadata"]["name"]: d for d in by_kind.get("Service", [])}
    governing = services.get(spec.get("serviceName"))
    if check(governing is not None,
             f"serviceName {spec.get('serviceName')} is not a Service here"):
        check(governing.get("spec", {}).get("clusterIP") == "None",
              "the governing Service must be headless (clusterIP: None)")
    check(any(s.get("spec", {}).get("clusterIP") != "None"
              for s in services.values()), "no ClusterIP Service for clients")
    ports = {p.get("name") for p in c.get("ports", [])}
    for name, s in services.items():
        check(selects(s.get("spec", {}).get("selector"), labels),
              f"Service {name} does not select the StatefulSet's pods")
        for p in s.get("spec", {}).get("ports", []):
            check(p.get("targetPort") in ports,
                  f"Service {name}: targetPort {p.get('targetPort')} is not a "
                  "container port name")
    pdbs = by_kind.get("PodDisruptionBudget", [])
    if check(pdbs, "no PodDisruptionBudget"):
        check(all(selects(p.get("spec", {}).get("selector", {})
                          .get("matchLabels"), labels) for p in pdbs),
              "PodDisruptionBudget does not select the StatefulSet's pods")


def main():
    if len(sys.argv) != 2:
        print("usage: k8s_manifests_test.py DIR")
        return 2
    docs = load(sys.argv[1])
    check_statefulset(docs)
    for f in failures:
        print("FAIL:", f)
    if failures:
        return 1
    print(f"PASS: {len(docs)} documents")
    return 0


if __name__ == "__main__":
    sys.exit(main())
