"""Node data mode: a whole Swaptacular node served from its node data
directory (one inbound trusting only the node's root and admitting active
peers, one outbound unix socket per active peer)."""

import shutil
import socket
import subprocess
import sys

import pytest

import harness
from harness import NodesPKI


@pytest.fixture
def tree(tmpdir_short):
    """A fresh three-node tree we may modify, with each peer's stomp.toml
    pointing at the port its node's inbound listens on here."""
    out = "%s/pki" % tmpdir_short
    subprocess.run([sys.executable, harness.PKI_BIN, "nodes", out, "--nodes", "3"],
                   check=True, capture_output=True, timeout=120)
    pki = NodesPKI(out)
    ports = {n.id: harness.free_port() for n in pki.nodes}
    for n in pki.nodes:
        for other in pki.nodes:
            if other is not n:
                (n.peer_dir(other) / "nodeinfo" / "stomp.toml").write_text(
                    'servers = ["127.0.0.1:%d"]\n' % ports[other.id])
    pki.ports = ports
    pki.tmp = tmpdir_short
    return pki


def _config(tree, node, backend):
    path = "%s/%s.yaml" % (tree.tmp, node.name)
    with open(path, "w") as f:
        f.write(f"""
workers: 1
nodedata:
  path: {node.dir}
  cert: {node.server_crt}
  key: {node.server_key}
  inbound: {{listen: 127.0.0.1:{tree.ports[node.id]}, target: {backend.target}}}
  outbound: {{socket_dir: {tree.tmp}/{node.name}-peers}}
  rescan_interval: 60s
""")
    return path


def _call(tree, a, b, msg):
    """a's app calls b's app through a's socket for b; the reply or b""."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    try:
        s.connect("%s/%s-peers/%s.sock" % (tree.tmp, a.name, b.id))
        s.sendall(msg)
        return s.recv(4096)
    except ConnectionResetError:
        return b""
    finally:
        s.close()


def test_two_nodes_talk_over_peer_sockets(tree, proxy, server):
    n0, n1, n2 = tree[0], tree[1], tree[2]
    app0, app1 = server(harness.echo_handler), server(harness.echo_handler)
    p0 = proxy("run", "--config", _config(tree, n0, app0))
    p1 = proxy("run", "--config", _config(tree, n1, app1))
    # one inbound and one outbound per active peer
    assert len(p0.events("listening")) == 3, p0.describe()
    assert _call(tree, n0, n1, b"0 to 1\n") == b"0 to 1\n"
    assert _call(tree, n1, n0, b"1 to 0\n") == b"1 to 0\n"
    rec = p1.wait_event("tunnel_closed", tunnel="nodedata")
    assert rec["peer"] == n0.id, rec
    rec = p0.wait_event("tunnel_closed", tunnel="peer-" + n1.id)
    assert rec["peer"] == n1.id, rec


def test_deactivated_peer_is_refused_at_the_next_handshake(tree, proxy, server):
    """DEACTIVATED is read at every handshake, resumed ones included (the
    second call resumes the first call's session)."""
    n0, n1 = tree[0], tree[1]
    app1 = server(harness.echo_handler)
    proxy("run", "--config", _config(tree, n0, server(harness.echo_handler)))
    p1 = proxy("run", "--config", _config(tree, n1, app1))
    assert _call(tree, n0, n1, b"before\n") == b"before\n"
    (n1.peer_dir(n0) / "DEACTIVATED").write_text("2026-11-30\n")
    assert _call(tree, n0, n1, b"after\n") == b""
    rec = p1.wait_event("handshake_refused", tunnel="nodedata")
    assert rec["reason"] == "peer_inactive", rec
    assert "deactivated" in rec["detail"], rec
    assert app1.accepted == 1


def test_unknown_and_inactive_peers(tree, proxy, server):
    """A caller with no peers/<id>/ or without ACTIVE is refused; a peer
    without ACTIVE gets no socket."""
    n0, n1, n2 = tree[0], tree[1], tree[2]
    shutil.rmtree(n1.peer_dir(n0))                   # node1 forgets node0
    (n1.peer_dir(n2) / "ACTIVE").unlink()            # node2 not active at node1
    p1 = proxy("run", "--config", _config(tree, n1, server(harness.echo_handler)))
    assert len(p1.events("listening")) == 1, p1.describe()   # the inbound only
    proxy("run", "--config", _config(tree, n0, server(harness.echo_handler)))
    proxy("run", "--config", _config(tree, n2, server(harness.echo_handler)))
    assert _call(tree, n0, n1, b"x\n") == b""
    assert _call(tree, n2, n1, b"y\n") == b""
    reasons = {r["claimed_peer"]: r for r in p1.wait_events("handshake_refused", 2)}
    assert "unknown" in reasons[n0.id]["detail"], reasons
    assert "not activated" in reasons[n2.id]["detail"], reasons


def test_broken_peer_is_skipped_and_the_others_work(tree, proxy, server):
    n0, n1, n2 = tree[0], tree[1], tree[2]
    (n0.peer_dir(n2) / "root-ca.crt").write_text("garbage\n")
    app1 = server(harness.echo_handler)
    p0 = proxy("run", "--config", _config(tree, n0, server(harness.echo_handler)))
    proxy("run", "--config", _config(tree, n1, app1))
    warn = p0.wait_event("config_warning")
    assert n2.id in warn["msg"] and "skipped" in warn["msg"], warn
    assert len(p0.events("listening")) == 2, p0.describe()
    assert _call(tree, n0, n1, b"still fine\n") == b"still fine\n"
    rc, out, err = harness.run_cli(["check", "--config", _config(tree, n0, app1)])
    assert rc == 0 and "skipped" in err, (rc, out, err)
