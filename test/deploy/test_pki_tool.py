"""deploy/pki/peerproxy-pki: what users run to make test PKIs.  Its output
must be what peerproxy accepts (checked with `peerproxy verify`) and keep
the profile of Swaptacular's CA scripts; its mistakes must be refused."""

import hashlib
import json
import os
import re
import stat
import subprocess
import sys

import pytest

from conftest import PKI_TOOL, run


def pki(*args, check=True):
    return run([sys.executable, PKI_TOOL] + [str(a) for a in args], check=check)


def verify(proxy_bin, *args):
    return run([proxy_bin, "verify"] + [str(a) for a in args], check=False)


def node_id(d):
    return (d / "db" / "nodeid").read_text().strip()


def text(cert):
    return run(["openssl", "x509", "-in", cert, "-noout", "-text"]).stdout


def serial(cert):
    return run(["openssl", "x509", "-in", cert, "-noout", "-serial"]).stdout.strip().split("=")[1]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pair")
    a, b = tmp / "a", tmp / "b"
    out = pki("node", a, "--kind", "aa", "--server", "node-a.example:1234").stdout
    assert node_id(a) in out
    pki("node", b, "--kind", "ca", "--server", "[2001:db8::2]:1234")
    pki("cross-sign", a, b)
    return a, b


def test_help_names_every_command_and_the_production_caveat():
    out = pki("--help").stdout
    for cmd in ("node", "cross-sign", "server-cert", "nodes", "show"):
        assert cmd in out
    assert "swpt_ca_scripts" in out and "test environments" in out


def test_node_layout_ids_and_key_modes(pair):
    a, b = pair
    assert re.fullmatch(r"[0-9a-f]{8}", node_id(a))
    assert re.fullmatch(r"[0-9a-f]{32}", node_id(b))
    for d in (a, b):
        for f in ("root-ca.crt", "root-ca.key", "root-ca.csr", "server.crt", "server.key",
                  "nodeinfo/stomp.toml"):
            assert (d / f).is_file(), (d, f)
        for key in ("root-ca.key", "server.key"):
            assert stat.S_IMODE(os.stat(d / key).st_mode) == 0o600
    assert (b / "nodeinfo" / "stomp.toml").read_text() == 'servers = ["[2001:db8::2]:1234"]\n'
    # Swaptacular derives an agent's id from its root key.
    der = subprocess.run(["openssl", "pkey", "-in", b / "root-ca.key", "-pubout", "-outform",
                          "DER"], capture_output=True, check=True).stdout
    assert hashlib.sha256(der).hexdigest()[:32] == node_id(b)


def test_cross_signed_peer_directories(pair):
    a, b = pair
    ida, idb = node_id(a), node_id(b)
    pa, pb = a / "peers" / idb, b / "peers" / ida
    for p in (pa, pb):
        assert sorted(os.listdir(p)) == ["ACTIVE", "nodeinfo", "peercert.crt", "root-ca.crt",
                                         "sub-ca.crt"]
    assert (pa / "root-ca.crt").read_text() == (b / "root-ca.crt").read_text()
    assert (pa / "nodeinfo" / "stomp.toml").read_text() == (b / "nodeinfo" / "stomp.toml").read_text()
    # A's peercert for B is B's sub-ca, and the other way round.
    assert (pa / "peercert.crt").read_text() == (pb / "sub-ca.crt").read_text()
    assert (pb / "peercert.crt").read_text() == (pa / "sub-ca.crt").read_text()
    t = text(pa / "peercert.crt")
    assert "X509v3 Name Constraints: critical" in t
    assert "serialNumber = %s" % idb in t.split("Name Constraints")[1].split("\n")[2]
    assert "CA:TRUE, pathlen:0" in t
    # A is an accounting authority: it gives the creditors agent a subnet.
    assert "Subnet: 000001" in t
    assert "Subnet" not in text(pb / "peercert.crt").split("Netscape Comment")[1].split("\n")[1]


def test_peerproxy_accepts_both_directions(pair, proxy_bin):
    a, b = pair
    ida, idb = node_id(a), node_id(b)
    # B's inbound judging A as a client.
    r = verify(proxy_bin, "--ca", b / "root-ca.crt", "--cert", a / "server.crt",
               "--chain", a / "peers" / idb / "sub-ca.crt")
    assert r.returncode == 0 and "peer id: " + ida in r.stdout, r.stdout + r.stderr
    # A's outbound judging B as the server it must be.
    r = verify(proxy_bin, "--ca", a / "peers" / idb / "root-ca.crt", "--cert", b / "server.crt",
               "--peer", idb)
    assert r.returncode == 0 and "peer id: " + idb in r.stdout, r.stdout + r.stderr
    # Without the cross certificate, B's root alone cannot vouch for A.
    r = verify(proxy_bin, "--ca", b / "root-ca.crt", "--cert", a / "server.crt")
    assert r.returncode == 1 and "untrusted" in r.stdout + r.stderr


def test_server_cert_rotation(pair, proxy_bin, tmp_path):
    a, b = pair
    idb = node_id(b)
    before = serial(b / "server.crt")
    old_key = (b / "server.key").read_text()
    out = pki("server-cert", b, "--days", "30").stdout
    after = serial(b / "server.crt")
    assert after != before and after in out
    assert (b / "server.key").read_text() != old_key
    assert stat.S_IMODE(os.stat(b / "server.key").st_mode) == 0o600
    r = verify(proxy_bin, "--ca", a / "peers" / idb / "root-ca.crt", "--cert", b / "server.crt",
               "--peer", idb)
    assert r.returncode == 0, r.stdout + r.stderr
    # The key matches the certificate: peerproxy loads them as a pair.
    conf = tmp_path / "c.yaml"
    conf.write_text("inbound:\n  - {name: t, listen: 127.0.0.1:1, target: 127.0.0.1:2, "
                    "ca: %s, cert: %s, key: %s}\n" % (b / "root-ca.crt", b / "server.crt",
                                                       b / "server.key"))
    r = run([proxy_bin, "check", "--config", conf], check=False)
    assert r.returncode == 0, r.stderr


def test_nodes_and_show(two_nodes):
    listing = json.loads((two_nodes / "nodes.json").read_text())
    assert [e["name"] for e in listing] == ["node0", "node1"]
    assert [e["server"] for e in listing] == ["127.0.0.1:1234", "127.0.0.1:1235"]
    out = pki("show", two_nodes / "node0").stdout
    assert listing[1]["id"] in out and "active" in out


def test_mistakes_are_refused(pair, tmp_path):
    a, b = pair
    r = pki("node", a, "--kind", "aa", check=False)          # not empty
    assert r.returncode == 1 and "not an empty directory" in r.stderr
    r = pki("node", tmp_path / "x", "--kind", "ca", "--id", "1234abcd", check=False)
    assert r.returncode == 1 and "derived from its root key" in r.stderr
    r = pki("node", tmp_path / "y", "--kind", "aa", "--server", "no port", check=False)
    assert r.returncode == 1 and "HOST:PORT" in r.stderr
    r = pki("cross-sign", a, a, check=False)
    assert r.returncode == 1 and "itself" in r.stderr
    r = pki("server-cert", tmp_path, check=False)
    assert r.returncode == 1 and "not a node directory" in r.stderr
    r = pki("nodes", tmp_path / "z", "--nodes", "2", "--servers", "h:1", check=False)
    assert r.returncode == 1 and "1 addresses for 2 nodes" in r.stderr
