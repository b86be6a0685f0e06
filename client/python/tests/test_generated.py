"""The committed stubs are what generate.sh makes from the proto."""

import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import PYTHON_DIR


def test_regenerating_gives_the_same_bytes() -> None:
    if shutil.which("protoc") is None or not os.path.exists(
            "/usr/bin/grpc_python_plugin"):
        pytest.skip("protoc or grpc_python_plugin is not installed")
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([os.path.join(PYTHON_DIR, "generate.sh"), out],
                       check=True)
        for name in ("idemkey_pb2.py", "idemkey_pb2_grpc.py"):
            with open(os.path.join(out, "idemkey", "v1", name), "rb") as f:
                fresh = f.read()
            with open(os.path.join(PYTHON_DIR, "src", "idemkey", "v1", name),
                      "rb") as f:
                assert f.read() == fresh, name
