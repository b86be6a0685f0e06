"""The committed stubs are what generate.sh makes from the protos."""

import os
import shutil
import subprocess
import tempfile
from typing import Iterator

import pytest

from conftest import PYTHON_DIR

GENERATED = [os.path.join("src", "idemkey", "v1", "idemkey_pb2.py"),
             os.path.join("src", "idemkey", "v1", "idemkey_pb2_grpc.py"),
             os.path.join("examples", "payments_pb2.py"),
             os.path.join("examples", "payments_pb2_grpc.py")]


@pytest.fixture(scope="module")
def generated() -> Iterator[str]:
    """A directory holding a fresh generate.sh output."""
    if shutil.which("protoc") is None or not os.path.exists(
            "/usr/bin/grpc_python_plugin"):
        pytest.skip("protoc or grpc_python_plugin is not installed")
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([os.path.join(PYTHON_DIR, "generate.sh"), out],
                       check=True)
        yield out


@pytest.mark.parametrize("path", GENERATED)
def test_regenerating_gives_the_same_bytes(generated: str, path: str) -> None:
    with open(os.path.join(generated, path), "rb") as f:
        fresh = f.read()
    with open(os.path.join(PYTHON_DIR, path), "rb") as f:
        assert f.read() == fresh, "%s is stale: run generate.sh" % path
