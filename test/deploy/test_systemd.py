"""deploy/systemd: the unit passes `systemd-analyze verify` (with its
binary paths pointed at the built peerproxy, which verify requires to
exist), keeps the hardening the issue asks for, and scores as well
exposed as systemd's offline security analysis allows."""

import re
import shutil

import pytest

from conftest import DEPLOY, run

UNIT = DEPLOY / "systemd" / "peerproxy.service"

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze not installed (package systemd)")


def _service():
    """The [Service] section as a dict (a repeated key keeps its last value)."""
    section, out = None, {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            out[key] = value
    return out


@pytest.fixture
def local_unit(tmp_path, proxy_bin):
    text = UNIT.read_text().replace("/usr/local/bin/peerproxy", proxy_bin)
    path = tmp_path / "peerproxy.service"
    path.write_text(text)
    return path


def test_systemd_analyze_verify(local_unit):
    r = run(["systemd-analyze", "verify", local_unit], check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    # verify only warns about some mistakes: none may be about this unit.
    assert "peerproxy.service" not in r.stderr, r.stderr


def test_hardening_and_reload():
    s = _service()
    assert s["ExecStart"].endswith("run --config /etc/peerproxy/config.yaml")
    assert s["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert s["RuntimeDirectory"] == "peerproxy"
    assert s["ProtectSystem"] == "strict"
    for key in ("PrivateTmp", "NoNewPrivileges", "ProtectHome", "PrivateDevices"):
        assert s[key] == "yes", key
    assert s["CapabilityBoundingSet"] == ""       # no capability at all
    assert set(s["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert s.get("DynamicUser") == "yes" or s["User"] not in ("", "root")
    # Long enough for the default 30s drain.
    assert int(s["TimeoutStopSec"].rstrip("s")) > 30


def test_unix_sockets_live_in_the_runtime_directory():
    """The shipped node data configuration puts its sockets where the unit
    lets peerproxy write (ProtectSystem=strict leaves RuntimeDirectory)."""
    import yaml
    conf = yaml.safe_load((DEPLOY / "kubernetes" / "base" / "config.yaml").read_text())
    runtime = "/run/%s/" % _service()["RuntimeDirectory"]
    assert conf["nodedata"]["outbound"]["socket_dir"].startswith(runtime)


def test_offline_security_score(local_unit):
    r = run(["systemd-analyze", "security", "--offline=yes", local_unit], check=False)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\S+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0, r.stdout
