"""Node data mode: a whole Swaptacular node served from its node data
directory (one inbound trusting only the node's root and admitting active
peers, one outbound unix socket per active peer)."""

import os
import shutil
import signal
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


def _config(tree, node, backend, connect=None, host="127.0.0.1", top="",
            rescan="60s"):
    """NODE's configuration: its node data, its inbound on HOST at its
    port, TOP (more top-level YAML, e.g. limits:) before the rest, the
    directory read again every RESCAN."""
    path = "%s/%s.yaml" % (tree.tmp, node.name)
    extra = ", connect_listen: %s" % connect if connect else ""
    listen = "[%s]" % host if ":" in host else host
    with open(path, "w") as f:
        f.write(f"""
workers: 1
{top}
nodedata:
  path: {node.dir}
  cert: {node.server_crt}
  key: {node.server_key}
  inbound: {{listen: "{listen}:{tree.ports[node.id]}", target: {backend.target}}}
  outbound: {{socket_dir: {tree.tmp}/{node.name}-peers{extra}}}
  rescan_interval: {rescan}
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
    except (ConnectionResetError, BrokenPipeError):
        # refused: the tunnel may be gone before or after our send
        return b""
    finally:
        s.close()


def _open_tunnel(path):
    """An echoing tunnel through the unix socket PATH, open."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    s.sendall(b"open\n")
    assert harness.recv_line(s) == b"open\n"
    return s


def _closed_by_proxy(s):
    try:
        assert s.recv(100) == b""
    except ConnectionResetError:
        pass
    s.close()


def test_two_nodes_talk_over_peer_sockets(tree, proxy, server):
    n0, n1 = tree[0], tree[1]
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
    assert rec.get("resumed") == "yes", rec  # judged again, not waved through
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
    # the metric's states: node2 inactive (no ACTIVE yet), node0 no peer
    m = harness.scrape(p1.admin)
    assert [harness.metric(m, "peerproxy_peers", state=s)
            for s in ("active", "inactive", "deactivated")] == [0, 1, 0]


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


def test_a_peer_missing_a_certificate_is_skipped_naming_the_whole_path(tree, server):
    """Like every other peer warning, a missing root-ca.crt or sub-ca.crt
    is named by its full path, so the operator can paste it."""
    n0, n1, n2 = tree[0], tree[1], tree[2]
    (n0.peer_dir(n1) / "root-ca.crt").unlink()
    (n0.peer_dir(n2) / "sub-ca.crt").unlink()
    rc, out, err = harness.run_cli(["check", "--config",
                                    _config(tree, n0, server(harness.echo_handler))])
    assert rc == 0, (rc, out, err)
    for peer, name in ((n1, "root-ca.crt"), (n2, "sub-ca.crt")):
        want = "peer %s skipped: %s is missing" % (peer.id, n0.peer_dir(peer) / name)
        assert want in err, err


def _connect_request(addr, head, then=b""):
    """Send HEAD (+ THEN) to the CONNECT listener; return (status line,
    socket) with the socket positioned after the response head."""
    s = harness.connect(addr)
    s.sendall(head + then)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    status = data.split(b"\r\n", 1)[0].decode()
    return status, s, data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""


def test_http_connect_picks_the_peer_by_id(tree, proxy, server):
    n0, n1, n2 = tree[0], tree[1], tree[2]
    connect_addr = "127.0.0.1:%d" % harness.free_port()
    p0 = proxy("run", "--config", _config(tree, n0, server(harness.echo_handler),
                                           connect=connect_addr))
    proxy("run", "--config", _config(tree, n1, server(harness.echo_handler)))
    # node2 does not run: its stomp.toml port is closed

    # 200, and bytes sent right behind the head are the first tunnel data
    status, s, rest = _connect_request(
        connect_addr, b"CONNECT %s:1234 HTTP/1.1\r\nHost: x\r\n\r\n" % n1.id.encode(),
        then=b"early bytes\n")
    try:
        assert status == "HTTP/1.1 200 Connection established", status
        while not rest.endswith(b"\n"):
            rest += s.recv(4096)
        assert rest == b"early bytes\n"
        s.sendall(b"more\n")
        assert harness.recv_line(s) == b"more\n"
    finally:
        s.close()
    rec = p0.wait_event("tunnel_closed", tunnel="peer-" + n1.id)
    assert rec["peer"] == n1.id and rec["bytes_up"] == str(len(b"early bytes\nmore\n")), rec

    status, s, _ = _connect_request(connect_addr, b"CONNECT %s:1234 HTTP/1.1\r\n\r\n" % n2.id.encode())
    s.close()
    assert status == "HTTP/1.1 502 Bad Gateway", status

    status, s, _ = _connect_request(connect_addr, b"CONNECT 0badc0de:1234 HTTP/1.1\r\n\r\n")
    s.close()
    assert status == "HTTP/1.1 403 Forbidden", status
    assert p0.wait_event("connect_refused", reason="unknown_peer")

    for bad in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"CONNECT nonsense HTTP/1.1\r\n\r\n",
                b"\x16\x03\x01 not http at all\r\n\r\n"):
        status, s, _ = _connect_request(connect_addr, bad)
        s.close()
        assert status == "HTTP/1.1 400 Bad Request", (bad, status)

    # deactivated after start: 403 at once
    (n0.peer_dir(n1) / "DEACTIVATED").write_text("now\n")
    status, s, _ = _connect_request(connect_addr, b"CONNECT %s:1234 HTTP/1.1\r\n\r\n" % n1.id.encode())
    s.close()
    assert status == "HTTP/1.1 403 Forbidden", status
    assert p0.wait_event("connect_refused", reason="peer_inactive")


# Found by fuzzing (issue 13): a GET, then a CONNECT in the same bytes.
_FUZZ_FOUND = (b"GET /\n\r\x05CONNECT 1\n\rl\x05GET /\n\r\x02" + b"\0" * 8 +
               b"\xff\xffGET /\n1\r\x05GET /\n\r\x05C\x05C\x15")


def _send_in_pieces(addr, data, size):
    """Send DATA to the CONNECT listener SIZE bytes per send (Nagle off);
    return the status line of the answer ("" if the proxy just closed)."""
    s = harness.connect(addr)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for i in range(0, len(data), size):
            try:
                s.sendall(data[i:i + size])
            except (BrokenPipeError, ConnectionResetError):
                break  # refused early: the answer is waiting
        got = b""
        while b"\r\n" not in got:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        return got.split(b"\r\n", 1)[0].decode()
    finally:
        s.close()


def test_connect_answers_the_same_however_the_bytes_arrive(tree, proxy, server):
    n0, n1 = tree[0], tree[1]
    connect_addr = "127.0.0.1:%d" % harness.free_port()
    p0 = proxy("run", "--config", _config(tree, n0, server(harness.echo_handler),
                                           connect=connect_addr))
    pipelined = b"GET / HTTP/1.1\r\n\r\nCONNECT %s:1234 HTTP/1.1\r\n\r\n" % n1.id.encode()
    for data in (_FUZZ_FOUND, pipelined):
        for size in (len(data), 7, 1):
            status = _send_in_pieces(connect_addr, data, size)
            assert status == "HTTP/1.1 400 Bad Request", (data, size, status)
    # each refusal is logged before its answer is sent; the harness reads
    # the log on a thread of its own, so wait for the lines
    assert len(p0.wait_events("connect_refused", 6, reason="bad_request")) == 6

    # a head that reaches 8192 bytes without ending: refused for its size,
    # in one send or in many
    big = b"CONNECT %s:1234 HTTP/1.1\r\nX-Pad: " % n1.id.encode() + b"p" * 9000
    for size in (len(big), 1000):
        status = _send_in_pieces(connect_addr, big, size)
        assert status == "HTTP/1.1 400 Bad Request", (size, status)
    assert len(p0.wait_events("connect_refused", 2, detail="request head too large")) == 2

    # and a good request still works after all that
    status, s, _ = _connect_request(connect_addr, b"CONNECT %s:1234 HTTP/1.1\r\n\r\n" % n1.id.encode())
    s.close()
    assert status == "HTTP/1.1 502 Bad Gateway", status  # node1 is not running


def test_rescan_follows_the_directory(tree, proxy, server):
    """SIGHUP rescans: a deactivated peer's open tunnel is closed and its
    socket removed; a peer activated meanwhile gains a socket."""
    n0, n1, n2 = tree[0], tree[1], tree[2]
    (n0.peer_dir(n2) / "ACTIVE").unlink()
    p0 = proxy("run", "--config", _config(tree, n0, server(harness.echo_handler)))
    p1 = proxy("run", "--config", _config(tree, n1, server(harness.echo_handler)))
    proxy("run", "--config", _config(tree, n2, server(harness.echo_handler)))
    sock2 = "%s/%s-peers/%s.sock" % (tree.tmp, n0.name, n2.id)
    assert not os.path.exists(sock2)

    # a long-lived tunnel node0 -> node1
    s = _open_tunnel("%s/%s-peers/%s.sock" % (tree.tmp, n0.name, n1.id))

    # node1 deactivates node0 and rescans: the open tunnel is closed
    (n1.peer_dir(n0) / "DEACTIVATED").write_text("now\n")
    p1.send_signal(signal.SIGHUP)
    rec = p1.wait_event("tunnel_closed", tunnel="nodedata")
    assert rec["reason"] == "peer_untrusted" and "deactivated" in rec["detail"], rec
    _closed_by_proxy(s)

    # node0 activates node2 and rescans: node2 gains a socket
    (n0.peer_dir(n2) / "ACTIVE").write_text("")
    p0.send_signal(signal.SIGHUP)
    rec = p0.wait_event("reloaded")
    assert rec["added"] == "1", rec
    assert _call(tree, n0, n2, b"new peer\n") == b"new peer\n"

    # a broken configuration on reload changes nothing
    (n0.dir / "db" / "nodeid").write_text("not an id\n")
    p0.send_signal(signal.SIGHUP)
    rec = p0.wait_event("reload_failed")
    assert "nodeid" in rec["error"], rec
    assert _call(tree, n0, n2, b"still\n") == b"still\n"


def test_the_directory_is_read_again_every_rescan_interval(tree, proxy, server):
    """Every rescan_interval the node data is read again with no trigger
    at all, quietly (at debug) when nothing changed; the reloads count."""
    n0 = tree[0]
    p0 = proxy("run", "--config", _config(tree, n0, server(harness.echo_handler),
                                           top="log: {level: debug}", rescan="1s"))
    first = p0.wait_event("reloaded", trigger="rescan", timeout=20)
    assert first["level"] == "debug" and first["added"] == "0", first
    p0.wait_event("reloaded", trigger="rescan", since=p0.mark(), timeout=20)
    m = harness.scrape(p0.admin)
    assert harness.metric(m, "peerproxy_reloads_total", result="success") >= 2


def test_a_rescan_warns_of_a_broken_peer_once_then_at_debug(tree, proxy, server):
    """A rescan that changes nothing logs at debug level only: a peer that
    stays broken is warned of when it breaks, its repeats are at debug;
    once mended and broken again it is warned of again."""
    n0, n2 = tree[0], tree[2]
    crt = n0.peer_dir(n2) / "root-ca.crt"
    good = crt.read_bytes()
    crt.write_text("garbage\n")
    p0 = proxy("run", "--config", _config(tree, n0, server(harness.echo_handler),
                                           top="log: {level: debug}", rescan="1s"))
    first = p0.wait_event("config_warning")
    assert first["level"] == "warn" and n2.id in first["msg"], first
    p0.wait_events("reloaded", 2, trigger="rescan", timeout=30)
    warned = [r for r in p0.events("config_warning") if n2.id in r["msg"]]
    assert len(warned) >= 3, p0.describe()
    assert [r["level"] for r in warned[1:]] == ["debug"] * (len(warned) - 1), warned

    crt.write_bytes(good)
    p0.wait_event("reloaded", added="1", timeout=30)
    m = p0.mark()
    crt.write_text("garbage again\n")
    again = p0.wait_event("config_warning", since=m, timeout=30)
    assert again["level"] == "warn" and n2.id in again["msg"], again


def test_resumption_survives_rescans_that_change_nothing(tree, proxy, server):
    """Both nodes read their node data again once a second, each rescan a
    new snapshot of the same tunnels: node0's outbound still offers the
    session it has (the session cache is keyed by the tunnel's name and
    trust, not by the snapshot), and node1's inbound still opens the
    ticket (its ticket keys belong to the tunnel name, not the snapshot)."""
    n0, n1 = tree[0], tree[1]
    p0 = proxy("run", "--config", _config(tree, n0, server(harness.echo_handler),
                                           top="log: {level: debug}", rescan="1s"))
    p1 = proxy("run", "--config", _config(tree, n1, server(harness.echo_handler),
                                           top="log: {level: debug}", rescan="1s"))
    out = "peer-" + n1.id
    assert _call(tree, n0, n1, b"first\n") == b"first\n"
    rec = p0.wait_event("tunnel_closed", tunnel=out)
    assert rec["resumed"] == "no", rec
    # node1's line of the first call too, before the marks: it may still
    # be on its way when node0's has come
    rec = p1.wait_event("tunnel_closed", tunnel="nodedata")
    assert rec["resumed"] == "no", rec
    mark0, mark1 = p0.mark(), p1.mark()
    p0.wait_event("reloaded", trigger="rescan", since=mark0, timeout=20)
    p1.wait_event("reloaded", trigger="rescan", since=mark1, timeout=20)
    assert _call(tree, n0, n1, b"second\n") == b"second\n"
    rec = p0.wait_event("tunnel_closed", tunnel=out, since=mark0)
    assert rec["resumed"] == "yes", p0.describe()
    rec = p1.wait_event("tunnel_closed", tunnel="nodedata", since=mark1)
    assert rec["resumed"] == "yes" and rec["peer"] == n0.id, p1.describe()


def test_check_verifies_our_chain_as_the_peer_will(tree, server):
    """A sub-ca.crt that is not the one the peer signed for us would be
    refused by that peer: check says so and skips the peer."""
    n0, n1, n2 = tree[0], tree[1], tree[2]
    shutil.copy(n0.peer_dir(n2) / "sub-ca.crt", n0.peer_dir(n1) / "sub-ca.crt")
    rc, out, err = harness.run_cli(["check", "--config",
                                    _config(tree, n0, server(harness.echo_handler))])
    assert rc == 0, (rc, out, err)
    assert "peer-%s" % n1.id in err and "would be refused by the peer" in err, err
    assert "(2 tunnels)" in out, out  # the inbound and node2's outbound


def test_deactivated_peer_loses_its_open_tunnel_on_reload(tree, proxy, server):
    """An open tunnel of a peer deactivated at node1 is closed when node1
    reloads, here on its own as the DEACTIVATED file appears (the rescan
    interval is a minute); the node's metrics and status show the peer's
    new state."""
    n0, n1 = tree[0], tree[1]
    proxy("run", "--config", _config(tree, n0, server(harness.echo_handler)))
    p1 = proxy("run", "--config", _config(tree, n1, server(harness.echo_handler)))
    m = harness.scrape(p1.admin)
    assert harness.metric(m, "peerproxy_peers", state="active") == 2
    assert harness.metric(m, "peerproxy_peers", state="deactivated") == 0
    s = _open_tunnel("%s/%s-peers/%s.sock" % (tree.tmp, n0.name, n1.id))
    try:
        _, doc = harness.admin_json(p1.admin, "GET", "/status")
        inbound = next(t for t in doc["tunnels"] if t["name"] == "nodedata")
        assert inbound["open_by_peer"] == {n0.id: 1}, inbound
        mark = p1.mark()
        (n1.peer_dir(n0) / "DEACTIVATED").write_text("2026-11-30\n")
        p1.wait_event("reloaded", since=mark, trigger="file_change")
        rec = p1.wait_event("tunnel_closed", tunnel="nodedata")
        assert rec["reason"] == "peer_untrusted", rec
        assert rec["peer"] == n0.id, rec
        _closed_by_proxy(s)
    finally:
        s.close()
    m = harness.scrape(p1.admin)
    assert harness.metric(m, "peerproxy_peers", state="active") == 1
    assert harness.metric(m, "peerproxy_peers", state="deactivated") == 1
    _, doc = harness.admin_json(p1.admin, "GET", "/status")
    states = {p["id"]: p["state"] for p in doc["nodedata"]["peers"]}
    assert states[n0.id] == "deactivated", states
    assert doc["nodedata"]["path"] == str(n1.dir)
    status, doc = harness.admin_json(p1.admin, "POST", "/reload")
    assert (status, doc["result"]) == (200, "success"), doc


def test_an_active_peer_whose_files_break_loses_its_outbound_only(tree, proxy, server):
    """node0's stomp.toml for node1 stops being TOML: node0's open tunnel
    to node1 closes (peer_removed) and its socket for node1 goes, while
    node1 still calls node0 (the inbound checks markers and chains only);
    mended, node0 reaches node1 again."""
    n0, n1 = tree[0], tree[1]
    p0 = proxy("run", "--config", _config(tree, n0, server(harness.echo_handler)))
    proxy("run", "--config", _config(tree, n1, server(harness.echo_handler)))
    sock = "%s/%s-peers/%s.sock" % (tree.tmp, n0.name, n1.id)
    toml = n0.peer_dir(n1) / "nodeinfo" / "stomp.toml"
    good = toml.read_text()
    s = _open_tunnel(sock)
    try:
        mark = p0.mark()
        toml.write_text("servers = [\n")
        rec = p0.wait_event("tunnel_closed", since=mark, tunnel="peer-" + n1.id)
        assert rec["reason"] == "peer_removed", rec
        _closed_by_proxy(s)
    finally:
        s.close()
    warn = p0.wait_event("config_warning", since=mark)
    assert str(toml) in warn["msg"] and n1.id in warn["msg"], warn
    p0.wait_event("reloaded", since=mark, removed="1")  # logged after the unlink
    assert not os.path.exists(sock)
    assert _call(tree, n1, n0, b"inbound still\n") == b"inbound still\n"
    mark = p0.mark()
    toml.write_text(good)
    p0.wait_event("reloaded", since=mark, added="1")
    assert _call(tree, n0, n1, b"mended\n") == b"mended\n"


def _tunnels(p):
    """The /status tunnels of proxy P by name."""
    status, doc = harness.admin_json(p.admin, "GET", "/status")
    assert status == 200, doc
    return {t["name"]: t for t in doc["tunnels"]}


def _servers(node, peer, *servers):
    (node.peer_dir(peer) / "nodeinfo" / "stomp.toml").write_text(
        "servers = [%s]\n" % ", ".join('"%s"' % s for s in servers))


@pytest.mark.skipif(not harness.have_ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_servers_in_stomp_toml(tree, proxy, server):
    """A peer that serves on IPv6 only, and one with an IPv6 and an IPv4
    server: every server is kept, in the file's order, and the links work
    (node2's IPv6 server is closed: the failover reaches its IPv4 one)."""
    n0, n1, n2 = tree[0], tree[1], tree[2]
    closed = harness.free_port()
    _servers(n0, n1, "[::1]:%d" % tree.ports[n1.id])
    _servers(n0, n2, "[::1]:%d" % closed, "127.0.0.1:%d" % tree.ports[n2.id])
    p0 = proxy("run", "--config", _config(tree, n0, server(harness.echo_handler)))
    proxy("run", "--config", _config(tree, n1, server(harness.echo_handler), host="::1"))
    proxy("run", "--config", _config(tree, n2, server(harness.echo_handler)))
    assert not p0.events("config_warning"), p0.describe()
    tunnels = _tunnels(p0)
    assert tunnels["peer-" + n1.id]["targets"] == ["[::1]:%d" % tree.ports[n1.id]], tunnels
    assert tunnels["peer-" + n2.id]["targets"] == [
        "[::1]:%d" % closed, "127.0.0.1:%d" % tree.ports[n2.id]], tunnels
    assert _call(tree, n0, n1, b"over v6\n") == b"over v6\n"
    for i in range(4):  # random order: some calls meet the closed one first
        assert _call(tree, n0, n2, b"call %d\n" % i) == b"call %d\n" % i


def test_broken_stomp_toml_is_a_warning_naming_the_file(tree, proxy, server):
    """A stomp.toml that is not TOML skips that peer with a warning naming
    the file and line; the other peers work."""
    n0, n1, n2 = tree[0], tree[1], tree[2]
    bad = n0.peer_dir(n2) / "nodeinfo" / "stomp.toml"
    bad.write_text('# node2\nservers = ["127.0.0.1:%d",\n  "127.0.0.1:1" oops ]\n'
                   % tree.ports[n2.id])
    p0 = proxy("run", "--config", _config(tree, n0, server(harness.echo_handler)))
    proxy("run", "--config", _config(tree, n1, server(harness.echo_handler)))
    warn = p0.wait_event("config_warning")
    assert "%s:3:" % bad in warn["msg"] and "skipped" in warn["msg"], warn
    assert "peer-" + n2.id not in _tunnels(p0)
    assert _call(tree, n0, n1, b"fine\n") == b"fine\n"


# The README's defaults (configuration reference: limits: and tls:).
README_LIMITS = {"handshake_timeout_ms": 10000, "connect_timeout_ms": 5000,
                 "idle_timeout_ms": 0, "max_connections": 10000,
                 "max_connections_per_peer": 0}
README_TLS = {"min_version": "1.3", "session_resumption": True}


def test_nodedata_and_cli_tunnels_get_the_readme_defaults(tree, proxy, server):
    n0, n1 = tree[0], tree[1]
    app = server(harness.echo_handler)
    p0 = proxy("run", "--config", _config(tree, n0, app, connect="127.0.0.1:%d" % harness.free_port()))
    tunnels = _tunnels(p0)
    assert set(tunnels) == {"nodedata", "connect", "peer-" + n1.id, "peer-" + tree[2].id}, tunnels
    for name, t in tunnels.items():
        assert t["limits"] == README_LIMITS and t["tls"] == README_TLS, (name, t)

    cli = proxy("outbound", "--listen", "127.0.0.1:%d" % harness.free_port(),
                "--target", "127.0.0.1:%d" % tree.ports[n1.id],
                "--ca", n0.peer_dir(n1) / "root-ca.crt", "--cert", n0.server_crt,
                "--chain", n0.peer_dir(n1) / "sub-ca.crt", "--key", n0.server_key)
    (t,) = _tunnels(cli).values()
    assert t["limits"] == README_LIMITS and t["tls"] == README_TLS, t
    cli = proxy("inbound", "--listen", "127.0.0.1:%d" % harness.free_port(),
                "--target", app.target, "--ca", n1.root_ca, "--cert", n1.server_crt,
                "--key", n1.server_key, "--max-connections", "7",
                "--max-connections-per-peer", "3", "--idle-timeout", "90s",
                "--tls-min", "1.2", "--session-resumption", "off")
    (t,) = _tunnels(cli).values()
    assert t["limits"] == dict(README_LIMITS, max_connections=7, max_connections_per_peer=3,
                               idle_timeout_ms=90000), t
    assert t["tls"] == {"min_version": "1.2", "session_resumption": False}, t


def test_nodedata_tunnels_take_the_files_limits_and_tls(tree, proxy, server):
    """The top-level limits: and tls: reach the node data tunnels too: with
    max_connections 1, a second tunnel to the same peer is refused while
    the first is open, and admitted once it has closed."""
    n0, n1 = tree[0], tree[1]
    top = ('limits: {max_connections: 1, handshake_timeout: 3s, connect_timeout: 2s, '
           'idle_timeout: 40s, max_connections_per_peer: 5}\n'
           'tls: {min_version: "1.2", session_resumption: off}\n')
    p0 = proxy("run", "--config", _config(tree, n0, server(harness.echo_handler), top=top))
    proxy("run", "--config", _config(tree, n1, server(harness.echo_handler)))
    want = {"handshake_timeout_ms": 3000, "connect_timeout_ms": 2000, "idle_timeout_ms": 40000,
            "max_connections": 1, "max_connections_per_peer": 5}
    for name, t in _tunnels(p0).items():
        assert t["limits"] == want, (name, t)
        assert t["tls"] == {"min_version": "1.2", "session_resumption": False}, (name, t)

    held = socket.socket(socket.AF_UNIX)
    held.settimeout(10)
    held.connect("%s/%s-peers/%s.sock" % (tree.tmp, n0.name, n1.id))
    held.sendall(b"held\n")
    assert harness.recv_line(held) == b"held\n"
    mark = p0.mark()
    assert _call(tree, n0, n1, b"second\n") == b""
    rec = p0.wait_event("connection_refused", since=mark, tunnel="peer-" + n1.id)
    assert rec["reason"] == "max_connections" and rec["limit"] == "1", rec
    held.close()
    p0.wait_event("tunnel_closed", since=mark, tunnel="peer-" + n1.id)
    assert _call(tree, n0, n1, b"third\n") == b"third\n"


def test_peer_no_longer_active_here_loses_its_socket_and_tunnels(tree, proxy, server):
    """The outbound side of a deactivation: when node0 deactivates node1,
    node0's socket for node1 goes and its open tunnel to node1 is closed
    (reason=peer_removed); re-activated, the peer gets its socket back; a
    peer directory removed altogether loses its socket too.  Each change
    is seen on its own (file watch), no signal sent."""
    n0, n1, n2 = tree[0], tree[1], tree[2]
    p0 = proxy("run", "--config", _config(tree, n0, server(harness.echo_handler)))
    proxy("run", "--config", _config(tree, n1, server(harness.echo_handler)))
    sock1 = "%s/%s-peers/%s.sock" % (tree.tmp, n0.name, n1.id)
    sock2 = "%s/%s-peers/%s.sock" % (tree.tmp, n0.name, n2.id)
    assert os.path.exists(sock1) and os.path.exists(sock2)

    s = _open_tunnel(sock1)
    try:
        mark = p0.mark()
        (n0.peer_dir(n1) / "DEACTIVATED").write_text("2026-12-06\n")
        rec = p0.wait_event("reloaded", since=mark, trigger="file_change")
        assert (rec["added"], rec["removed"]) == ("0", "1"), rec
        rec = p0.wait_event("tunnel_closed", since=mark, tunnel="peer-" + n1.id)
        assert rec["reason"] == "peer_removed" and rec["peer"] == n1.id, rec
        _closed_by_proxy(s)
    finally:
        s.close()
    assert not os.path.exists(sock1)
    assert "peer-" + n1.id not in _tunnels(p0)

    mark = p0.mark()
    (n0.peer_dir(n1) / "DEACTIVATED").unlink()
    rec = p0.wait_event("reloaded", since=mark, trigger="file_change")
    assert (rec["added"], rec["removed"]) == ("1", "0"), rec
    assert _call(tree, n0, n1, b"back\n") == b"back\n"

    mark = p0.mark()
    shutil.rmtree(n0.peer_dir(n2))
    rec = p0.wait_event("reloaded", since=mark, trigger="file_change")
    assert (rec["added"], rec["removed"]) == ("0", "1"), rec
    assert not os.path.exists(sock2)
    _, doc = harness.admin_json(p0.admin, "GET", "/status")
    assert n2.id not in {p["id"] for p in doc["nodedata"]["peers"]}, doc["nodedata"]


def test_a_change_of_any_node_data_file_reloads(tree, proxy, server):
    """Every node data file is a file the configuration names: a change of
    one reloads on its own, no signal and no rescan (a minute away).  A
    peer's stomp.toml (the peer moved), a skipped peer's missing sub-ca.crt
    put back, a peer's nodeinfo/ made afresh, and db/nodeid."""
    n0, n1, n2 = tree[0], tree[1], tree[2]
    closed = harness.free_port()
    _servers(n0, n1, "127.0.0.1:%d" % closed)
    sub_ca = n0.peer_dir(n2) / "sub-ca.crt"
    saved = sub_ca.read_bytes()
    sub_ca.unlink()
    p0 = proxy("run", "--config", _config(tree, n0, server(harness.echo_handler)))
    proxy("run", "--config", _config(tree, n1, server(harness.echo_handler)))
    proxy("run", "--config", _config(tree, n2, server(harness.echo_handler)))
    assert set(_tunnels(p0)) == {"nodedata", "peer-" + n1.id}
    assert _call(tree, n0, n1, b"nobody there\n") == b""

    mark = p0.mark()
    _servers(n0, n1, "127.0.0.1:%d" % tree.ports[n1.id])
    p0.wait_event("reloaded", since=mark, trigger="file_change")
    assert _tunnels(p0)["peer-" + n1.id]["targets"] == ["127.0.0.1:%d" % tree.ports[n1.id]]
    assert _call(tree, n0, n1, b"moved\n") == b"moved\n"

    mark = p0.mark()
    sub_ca.write_bytes(saved)
    rec = p0.wait_event("reloaded", since=mark, trigger="file_change")
    assert rec["added"] == "1", rec
    assert _call(tree, n0, n2, b"whole again\n") == b"whole again\n"

    # nodeinfo/ removed: the peer is skipped; made afresh with its file
    # (as a rename of a finished directory), the peer is back
    info = n0.peer_dir(n2) / "nodeinfo"
    mark = p0.mark()
    shutil.rmtree(info)
    rec = p0.wait_event("reloaded", since=mark, trigger="file_change")
    assert "peer-" + n2.id not in _tunnels(p0)
    mark = p0.mark()
    fresh = n0.peer_dir(n2) / "nodeinfo.new"
    fresh.mkdir()
    (fresh / "stomp.toml").write_text('servers = ["127.0.0.1:%d"]\n' % tree.ports[n2.id])
    fresh.rename(info)
    p0.wait_for(lambda r: r.get("event") == "reloaded" and r.get("added") == "1",
                since=mark, what="the peer back after its nodeinfo/ came back")
    assert _call(tree, n0, n2, b"back\n") == b"back\n"

    mark = p0.mark()
    (n0.dir / "db" / "nodeid").write_text("not an id\n")
    rec = p0.wait_event("reload_failed", since=mark, trigger="file_change")
    assert "nodeid" in rec["error"], rec


def test_open_tunnels_of_a_peer_no_longer_active_are_closed(tree, proxy, server):
    """Every way a peer stops being active closes its open tunnels: on the
    inbound, ACTIVE removed (not activated) and the peer directory removed
    (unknown) close with reason=peer_untrusted; on the outbound, a tunnel
    made through CONNECT closes with reason=peer_removed, as a socket's
    does.  A peer deactivated before the start gets no socket."""
    n0, n1, n2 = tree[0], tree[1], tree[2]
    (n0.peer_dir(n2) / "DEACTIVATED").write_text("2026-12-01\n")  # ACTIVE stays
    connect = "127.0.0.1:%d" % harness.free_port()
    p0 = proxy("run", "--config", _config(tree, n0, server(harness.echo_handler),
                                           connect=connect))
    p1 = proxy("run", "--config", _config(tree, n1, server(harness.echo_handler)))
    proxy("run", "--config", _config(tree, n2, server(harness.echo_handler)))
    assert sorted(os.listdir("%s/%s-peers" % (tree.tmp, n0.name))) == ["%s.sock" % n1.id]
    assert "peer-" + n2.id not in _tunnels(p0)

    sock = "%s/%s-peers/%s.sock" % (tree.tmp, n0.name, n1.id)
    saved = "%s/saved-peer" % tree.tmp
    shutil.copytree(n1.peer_dir(n0), saved)
    for change, detail in ((lambda: (n1.peer_dir(n0) / "ACTIVE").unlink(), "not activated"),
                           (lambda: shutil.rmtree(n1.peer_dir(n0)), "unknown")):
        s = _open_tunnel(sock)
        mark = p1.mark()
        change()
        rec = p1.wait_event("tunnel_closed", since=mark, tunnel="nodedata",
                            reason="peer_untrusted")
        assert detail in rec["detail"] and rec["peer"] == n0.id, rec
        _closed_by_proxy(s)
        if detail == "not activated":
            (n1.peer_dir(n0) / "ACTIVE").write_text("")
            p1.wait_event("reloaded", since=mark, trigger="file_change", added="0")
            # the marker is back: admitted again (the gate reads it)
            assert _call(tree, n0, n1, b"again\n") == b"again\n"
            p1.wait_event("tunnel_closed", since=mark, tunnel="nodedata", reason="done")

    # node0's side, through CONNECT (node0 back at node1 first): node1
    # goes
    shutil.copytree(saved, n1.peer_dir(n0))
    status, s, rest = _connect_request(
        connect, b"CONNECT %s:1234 HTTP/1.1\r\n\r\n" % n1.id.encode())
    assert status == "HTTP/1.1 200 Connection established", status
    s.sendall(b"via connect\n")
    assert harness.recv_line(s) == b"via connect\n"
    mark = p0.mark()
    (n0.peer_dir(n1) / "DEACTIVATED").write_text("2026-12-06\n")
    rec = p0.wait_event("tunnel_closed", since=mark, tunnel="peer-" + n1.id)
    assert rec["reason"] == "peer_removed" and rec["peer"] == n1.id, rec
    _closed_by_proxy(s)
    assert not os.path.exists(sock)


def test_servers_are_tried_in_random_order_with_failover(tree, proxy, server, tmpdir_short):
    """node1 serves on two addresses (two processes) with a closed port
    between them in node0's stomp.toml: every call gets through, and both
    live servers are used, so the order is not the file's (which would
    always reach the first) nor a fixed other one."""
    n0, n1 = tree[0], tree[1]
    second = harness.free_port()
    closed = harness.free_port()
    _servers(n0, n1, "127.0.0.1:%d" % tree.ports[n1.id], "127.0.0.1:%d" % closed,
             "127.0.0.1:%d" % second)
    p0 = proxy("run", "--config", _config(tree, n0, server(harness.echo_handler)))
    proxy("run", "--config", _config(tree, n1, server(harness.echo_handler)))
    other = "%s/n1-second.yaml" % tmpdir_short
    with open(other, "w") as f:
        f.write(f"""workers: 1
nodedata:
  path: {n1.dir}
  cert: {n1.server_crt}
  key: {n1.server_key}
  inbound: {{listen: "127.0.0.1:{second}", target: {server(harness.echo_handler).target}}}
""")
    proxy("run", "--config", other)
    calls = 24
    for i in range(calls):
        assert _call(tree, n0, n1, b"call %d\n" % i) == b"call %d\n" % i
    recs = p0.wait_events("tunnel_closed", calls, tunnel="peer-" + n1.id)
    used = {r["target"] for r in recs}
    assert all(r["reason"] == "done" for r in recs), recs
    # 24 calls all to one of two live servers: 2 * (1/2)^24 by chance
    assert used == {"127.0.0.1:%d" % tree.ports[n1.id], "127.0.0.1:%d" % second}, used


def test_a_killed_node_leaves_no_socket_for_a_peer_no_longer_active(tree, proxy, server):
    """A node killed (no chance to remove its sockets) and started again
    after a peer was deactivated: that peer's old socket file is removed,
    not left to look like a socket for it.  What is not a stale socket of
    ours stays: a socket some other process listens on, a file of that
    name, another name."""
    n0, n1, n2 = tree[0], tree[1], tree[2]
    config = _config(tree, n0, server(harness.echo_handler))
    p0 = proxy("run", "--config", config)
    sockets = "%s/%s-peers" % (tree.tmp, n0.name)
    p0.send_signal(signal.SIGKILL)
    p0.wait_exit(10)
    assert sorted(os.listdir(sockets)) == sorted(["%s.sock" % n1.id, "%s.sock" % n2.id])
    (n0.peer_dir(n1) / "DEACTIVATED").write_text("2026-12-06\n")
    live = socket.socket(socket.AF_UNIX)
    live.bind("%s/0badc0de.sock" % sockets)
    live.listen(1)
    with open("%s/12345678.sock" % sockets, "w") as f:
        f.write("not a socket\n")
    with open("%s/notes.txt" % sockets, "w") as f:
        f.write("mine\n")
    try:
        p0 = proxy("run", "--config", config)
        rec = p0.wait_event("stale_socket_removed")
        assert "%s/%s.sock" % (sockets, n1.id) in rec["msg"], rec
        assert sorted(os.listdir(sockets)) == sorted(
            ["%s.sock" % n2.id, "0badc0de.sock", "12345678.sock", "notes.txt"])
        assert len(p0.events("stale_socket_removed")) == 1, p0.describe()
    finally:
        live.close()
