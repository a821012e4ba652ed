"""Shared pieces of the deployment artefact checks (test/deploy).

Run: PEERPROXY_BIN=build/peerproxy /usr/bin/python3 -m pytest -q test/deploy
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
sys.path.insert(0, str(REPO / "test" / "integration"))

PROXY_BIN = os.environ.get("PEERPROXY_BIN") or str(REPO / "build" / "peerproxy")
PKI_TOOL = str(DEPLOY / "pki" / "peerproxy-pki")


def run(argv, check=True, timeout=120, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          check=check, timeout=timeout, **kw)


@pytest.fixture(scope="session")
def proxy_bin():
    if not os.access(PROXY_BIN, os.X_OK):
        pytest.fail("peerproxy binary %s is missing (build it or set PEERPROXY_BIN)" % PROXY_BIN)
    return os.path.abspath(PROXY_BIN)  # unit files need absolute paths


@pytest.fixture(scope="session")
def two_nodes(tmp_path_factory):
    """A two-node tree made by the user-facing PKI tool."""
    out = tmp_path_factory.mktemp("pki") / "nodes"
    run([sys.executable, PKI_TOOL, "nodes", out, "--nodes", "2"])
    return out
