"""fingerprint and tenant_name_for against the shared vector files."""

import base64
import json
import os

from conftest import REPO_ROOT

from idemkey import fingerprint, tenant_name_for

RULES = os.path.join(REPO_ROOT, "common", "rules", "testdata")


def _vectors(name: str):
    with open(os.path.join(RULES, name), encoding="utf-8") as f:
        return json.load(f)["vectors"]


def test_fingerprint_vectors() -> None:
    vectors = _vectors("fingerprint_vectors.json")
    assert len(vectors) >= 10
    for v in vectors:
        got = fingerprint(v["method"], v["target"],
                          base64.b64decode(v["body_base64"]))
        assert got.hex() == v["fingerprint_hex"], v["name"]
        assert len(got) == 32


def test_fingerprint_documented_examples() -> None:
    assert fingerprint(b"POST", b"/v1/charges", b'{"amount":100}').hex() == (
        "605684389a44270beeb1d3af67a75b8e200fcefa9e69dbcccfa3fbbb64bc71ec")
    assert fingerprint("POST", "/v1/charges?amount=1", "{}").hex() == (
        "bd906b79a2c13be0011b178bd3497d7736c769642b239112668dc31dc00469be")


def test_tenant_name_vectors() -> None:
    vectors = _vectors("tenant_name_vectors.json")
    assert len(vectors) >= 10
    for v in vectors:
        assert tenant_name_for(v["org_id"]) == v["tenant"], v["name"]
