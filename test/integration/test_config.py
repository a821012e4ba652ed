"""peerproxy run/check --config FILE: many tunnels in one process from a
YAML file, per-peer routes, connection limits, and the checker."""

import os
import signal

import harness
from harness import connect, recv_line, roundtrip, run_cli


def _inbound(node, listen, body):
    """The top of a file: node's inbound tunnel "stomp" on LISTEN, with
    BODY (its target or routes lines), then the outbound: key."""
    return f"""inbound:
  - name: stomp
    listen: {listen}
    ca: {node.root_ca}
    cert: {node.server_crt}
    key: {node.server_key}
{body}outbound:
"""


_outbound = harness.outbound_yaml


def _assert_refused(addr, msg):
    """A call through ADDR gets nothing back (closed or reset)."""
    assert harness.call_expecting_refusal(addr, msg) == b""


def _write(tmp_path, text):
    path = tmp_path / "peerproxy.yaml"
    path.write_text(text)
    return path


def _addr():
    return "127.0.0.1:%d" % harness.free_port()


def test_one_process_many_tunnels_with_routes(pki, proxy, server, tmp_path):
    """One process holds node1's inbound and the outbounds of node0 and
    node2 towards it; the inbound routes each caller by its verified id."""
    n0, n1, n2 = pki[0], pki[1], pki[2]
    for_n0, for_others = server(harness.echo_handler), server(harness.echo_handler)
    in_addr, out0, out2 = _addr(), _addr(), _addr()
    text = ("workers: 2\nlog: {level: info}\n"
            + _inbound(n1, in_addr,
                       f"    routes:\n"
                       f"      - {{peers: [{n0.id}], target: {for_n0.target}}}\n"
                       f"      - {{peers: [\"*\"], target: {for_others.target}}}\n")
            + _outbound("from-node0", out0, n0, n1, in_addr)
            + _outbound("from-node2", out2, n2, n1, in_addr))
    path = _write(tmp_path, text)
    rc, out, err = run_cli(["check", "--config", path])
    assert rc == 0 and "configuration OK (3 tunnels)" in out, (rc, out, err)
    p = proxy("run", "--config", path)
    assert len(p.events("listening")) == 3
    assert roundtrip(out0, b"from node0\n") == b"from node0\n"
    assert roundtrip(out2, b"from node2\n") == b"from node2\n"
    recs = p.wait_events("tunnel_closed", 2, tunnel="stomp")
    by_peer = {r["peer"]: r["target"] for r in recs}
    assert by_peer[n0.id].endswith(for_n0.target.rsplit(":", 1)[1]), recs
    assert by_peer[n2.id].endswith(for_others.target.rsplit(":", 1)[1]), recs
    assert for_n0.accepted == 1 and for_others.accepted == 1


def test_no_route_refuses_the_caller(pki, proxy, server, tmp_path):
    n0, n1, n2 = pki[0], pki[1], pki[2]
    backend = server(harness.echo_handler)
    in_addr, out2 = _addr(), _addr()
    text = (_inbound(n1, in_addr,
                     f"    routes:\n      - {{peers: [{n0.id}], target: {backend.target}}}\n")
            + _outbound("from-node2", out2, n2, n1, in_addr))
    p = proxy("run", "--config", _write(tmp_path, text))
    _assert_refused(out2, b"hello\n")
    rec = p.wait_event("handshake_refused", tunnel="stomp")
    assert rec["reason"] == "no_route", rec
    assert backend.accepted == 0


def test_max_connections_refuses_the_excess(pki, proxy, server, tmp_path):
    """Two tunnels may be open; the third is refused at accept, and the two
    keep working."""
    n0, n1 = pki[0], pki[1]
    backend = server(harness.echo_handler)
    in_addr, out0 = _addr(), _addr()
    text = (_inbound(n1, in_addr, f"    target: {backend.target}\n")
            + _outbound("from-node0", out0, n0, n1, in_addr, limits="max_connections: 2"))
    p = proxy("run", "--config", _write(tmp_path, text))
    held = [connect(out0) for _ in range(2)]
    try:
        for i, s in enumerate(held):
            s.sendall(b"held %d\n" % i)
            assert recv_line(s) == b"held %d\n" % i
        _assert_refused(out0, b"")
        rec = p.wait_event("connection_refused", tunnel="from-node0")
        assert rec["reason"] == "max_connections" and rec["limit"] == "2", rec
        for i, s in enumerate(held):
            s.sendall(b"still %d\n" % i)
            assert recv_line(s) == b"still %d\n" % i
    finally:
        for s in held:
            s.close()
    # once they are closed, a new tunnel fits again
    p.wait_events("tunnel_closed", 2, tunnel="from-node0")
    assert roundtrip(out0, b"again\n") == b"again\n"


def test_check_lists_every_problem(tmp_path):
    path = _write(tmp_path, """
workers: lots
inbound:
  - name: a
    listen: 127.0.0.1:1
    ca: missing-ca.crt
    cert: c.crt
    key: k.key
    alow_peers: [x]
    target: 127.0.0.1:2
""")
    rc, out, err = run_cli(["check", "--config", path])
    assert rc == 2, (rc, out, err)
    assert 'workers: "lots"' in err, err
    assert "inbound[0].alow_peers: unknown key" in err, err
    assert "peerproxy.yaml:9:5:" in err, err


def test_check_counts_one_tunnel_in_the_singular(pki, tmp_path):
    path = _write(tmp_path, _inbound(pki[1], _addr(), "    target: 127.0.0.1:9\n"))
    rc, out, err = run_cli(["check", "--config", path])
    assert rc == 0 and out.endswith(": configuration OK (1 tunnel)\n"), (rc, out, err)


def test_check_names_missing_files(tmp_path):
    path = _write(tmp_path, """
inbound:
  - name: a
    listen: 127.0.0.1:1
    ca: missing-ca.crt
    cert: c.crt
    key: k.key
    target: 127.0.0.1:2
  - name: b
    listen: 127.0.0.1:1
    ca: other-missing.crt
    cert: c.crt
    key: k.key
    target: 127.0.0.1:2
""")
    rc, out, err = run_cli(["check", "--config", path])
    assert rc == 2, (rc, out, err)
    assert str(tmp_path / "missing-ca.crt") in err, err
    assert str(tmp_path / "other-missing.crt") in err, err
    assert "both listen on 127.0.0.1:1" in err, err


def test_config_from_environment_and_usage(tmp_path):
    rc, out, err = run_cli(["run"])
    assert rc == 2 and "--config FILE is required" in err, (rc, out, err)
    rc, out, err = run_cli(["check", "--config", tmp_path / "nope.yaml"])
    assert rc == 2 and "nope.yaml" in err, (rc, out, err)
    path = _write(tmp_path, "workers: 1\n")
    env = dict(os.environ, PEERPROXY_CONFIG=str(path))
    p = harness.Proc([harness.PROXY_BIN, "check"], name="check", env=env)
    rc = p.wait_exit(timeout=10)
    assert rc == 2, p.describe()
    assert "no inbound or outbound tunnel" in p.log_text(), p.describe()


def test_sighup_reload(pki, proxy, server, tmp_path):
    """SIGHUP applies a changed file: a listener added, a peer removed from
    allow_peers loses its open tunnel, other listeners keep serving; a
    broken file changes nothing."""
    n0, n1, n2 = pki[0], pki[1], pki[2]
    backend = server(harness.echo_handler)
    in_addr, out0, out2 = _addr(), _addr(), _addr()

    def text(allowed, with_n2):
        t = (_inbound(n1, in_addr,
                      f"    allow_peers: [{allowed}]\n    target: {backend.target}\n")
             + _outbound("from-node0", out0, n0, n1, in_addr))
        if with_n2:
            t += _outbound("from-node2", out2, n2, n1, in_addr)
        return t

    path = _write(tmp_path, text(n0.id, False))
    p = proxy("run", "--config", path)
    s = connect(out0)
    s.sendall(b"open\n")
    assert recv_line(s) == b"open\n"

    path.write_text(text(n2.id, True))
    p.send_signal(signal.SIGHUP)
    rec = p.wait_event("reloaded")
    assert rec["added"] == "1" and rec["removed"] == "0", rec
    rec = p.wait_event("tunnel_closed", tunnel="stomp")
    assert rec["reason"] == "peer_untrusted", rec
    try:
        assert s.recv(100) == b""
    except ConnectionResetError:
        pass
    s.close()
    assert roundtrip(out2, b"node2 now\n") == b"node2 now\n"

    path.write_text("inbound: [\n")
    p.send_signal(signal.SIGHUP)
    rec = p.wait_event("reload_failed")
    assert "YAML error" in rec["error"], rec
    assert roundtrip(out2, b"still\n") == b"still\n"


def test_a_rewritten_ca_is_never_offered_the_old_session(pki, proxy, server, tmp_path):
    """The outbound keeps sessions per tunnel name and trust: once a
    reload reads the ca file rewritten in place (same path, one more
    anchor), the session made under the old anchors is not offered; the
    next handshake is a full one, and its session resumes after it."""
    n0, n1, n2 = pki[0], pki[1], pki[2]
    backend = server(harness.echo_handler)
    in_addr, out_addr = _addr(), _addr()
    proxy("inbound", "--listen", in_addr, "--target", backend.target,
          *pki.inbound_args(n1), "--workers", "1")
    ca = tmp_path / "peer-root-ca.crt"
    node1_root = (n0.peer_dir(n1) / "root-ca.crt").read_bytes()
    ca.write_bytes(node1_root)
    entry = _outbound("to-node1", out_addr, n0, n1, in_addr).replace(
        str(n0.peer_dir(n1) / "root-ca.crt"), str(ca))
    assert str(ca) in entry
    path = _write(tmp_path, "workers: 1\noutbound:\n" + entry)
    p = proxy("run", "--config", path)

    def call(i):
        # No half-close before the reply: BoringSSL ignores session
        # tickets that arrive after its side sent close_notify.
        msg = b"call %d\n" % i
        s = connect(out_addr)
        try:
            s.sendall(msg)
            assert recv_line(s) == msg
        finally:
            s.close()
        return p.wait_events("tunnel_closed", i + 1)[i]["resumed"]

    assert [call(0), call(1)] == ["no", "yes"]
    ca.write_bytes(node1_root + (n0.peer_dir(n2) / "root-ca.crt").read_bytes())
    mark = p.mark()
    p.send_signal(signal.SIGHUP)
    p.wait_event("reloaded", trigger="SIGHUP", since=mark)
    assert [call(2), call(3)] == ["no", "yes"], p.describe()


def test_max_connections_per_peer(pki, proxy, server, tmp_path):
    """One open tunnel per peer: node0's second is refused after its
    handshake, node2 still gets in, and node0's first keeps working."""
    n0, n1, n2 = pki[0], pki[1], pki[2]
    backend = server(harness.echo_handler)
    in_addr, out0, out2 = _addr(), _addr(), _addr()
    # the outbounds inherit the limit (one peer each): lift it for them
    lift = "max_connections_per_peer: 0"
    text = ("limits: {max_connections_per_peer: 1}\n"
            + _inbound(n1, in_addr, f"    target: {backend.target}\n")
            + _outbound("from-node0", out0, n0, n1, in_addr, limits=lift)
            + _outbound("from-node2", out2, n2, n1, in_addr, limits=lift))
    p = proxy("run", "--config", _write(tmp_path, text))
    first = connect(out0)
    try:
        first.sendall(b"first\n")
        assert recv_line(first) == b"first\n"
        _assert_refused(out0, b"second\n")
        rec = p.wait_event("handshake_refused", tunnel="stomp")
        assert rec["reason"] == "max_connections_per_peer", rec
        assert roundtrip(out2, b"node2\n") == b"node2\n"
        first.sendall(b"first again\n")
        assert recv_line(first) == b"first again\n"
    finally:
        first.close()
    p.wait_events("tunnel_closed", 2, tunnel="stomp")
    assert roundtrip(out0, b"now free\n") == b"now free\n"
