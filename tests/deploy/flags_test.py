#!/usr/bin/python3
"""flags_test.py REPO IDEMKEYD — every idemkeyd flag the deploy kit and
docs/operations.md pass or document is a flag of the built idemkeyd.

Looked at: ExecStart= of deploy/systemd/idemkeyd.service and
idemkeyd-postgres@.service, the IDEMKEYD_FLAGS and IDEMKEYD_INSTANCE_FLAGS
lines of deploy/systemd/idemkeyd.env.example and idemkeyd-postgres.env.example
(commented ones too), ENTRYPOINT of deploy/container/Containerfile, the
container command and args of deploy/kubernetes/idemkeyd.yaml and
idemkeyd-postgres.yaml (commented ones too), and the flag tables of
docs/operations.md (rows starting "| `--").

Every flag must be listed by `idemkeyd --help`: an unknown one is a typo
that would make idemkeyd exit 1 at start.
"""
import json
import os
import re
import subprocess
import sys

FLAG = re.compile(r"--([a-z][a-z0-9_]*)")


def used_flags(repo):
    used = {}

    def add(where, text):
        for name in FLAG.findall(text):
            used.setdefault(name, set()).add(where)

    for name in ("idemkeyd.service", "idemkeyd-postgres@.service"):
        unit = os.path.join(repo, "deploy/systemd", name)
        for line in open(unit, encoding="utf-8"):
            if line.startswith("ExecStart="):
                add(name, line)
    for name in ("idemkeyd.env.example", "idemkeyd-postgres.env.example"):
        env = os.path.join(repo, "deploy/systemd", name)
        for line in open(env, encoding="utf-8"):
            if re.match(r"#?IDEMKEYD_(INSTANCE_)?FLAGS=", line):
                add(name, line)
    containerfile = os.path.join(repo, "deploy/container/Containerfile")
    for line in open(containerfile, encoding="utf-8"):
        if line.startswith("ENTRYPOINT"):
            add("Containerfile", " ".join(json.loads(line[len("ENTRYPOINT"):])))
    for name in ("idemkeyd.yaml", "idemkeyd-postgres.yaml"):
        k8s = os.path.join(repo, "deploy/kubernetes", name)
        in_args = False
        for line in open(k8s, encoding="utf-8"):
            stripped = line.strip()
            if stripped.startswith("command: [/usr/local/bin/idemkeyd"):
                add(f"{name} command", stripped)
            if stripped == "args:":
                in_args = True
                continue
            if in_args:
                if re.match(r"#?\s*- --", stripped):
                    add(f"{name} args", stripped)
                elif stripped and not stripped.startswith("#"):
                    in_args = False
    ops = os.path.join(repo, "docs/operations.md")
    if os.path.exists(ops):
        for line in open(ops, encoding="utf-8"):
            if line.startswith("| `--"):
                add("docs/operations.md", line.split("|")[1])
    return used


def main():
    if len(sys.argv) != 3:
        print("usage: flags_test.py REPO IDEMKEYD")
        return 2
    repo, idemkeyd = sys.argv[1], sys.argv[2]
    help_text = subprocess.run([idemkeyd, "--help"], capture_output=True,
                               text=True, check=False)
    known = set(re.findall(r"^\s+--([a-z0-9_]+)",
                           help_text.stdout + help_text.stderr, re.M))
    if len(known) < 10:
        print(f"FAIL: `{idemkeyd} --help` listed only {sorted(known)}")
        return 1
    used = used_flags(repo)
    failed = False
    for name in sorted(used):
        where = ", ".join(sorted(used[name]))
        if name in known:
            print(f"ok       --{name} ({where})")
        else:
            print(f"FAIL     --{name} ({where}): not a flag of idemkeyd")
            failed = True
    if failed:
        return 1
    print(f"PASS: {len(used)} flags")
    return 0


if __name__ == "__main__":
    sys.exit(main())
