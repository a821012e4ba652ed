"""Who gets through: forged presentations, peer allow-lists, TLS versions,
missing certificates, x509 mode with --allow-* and name constraints, and
the `verify` subcommand's verdicts.

A refused TLS 1.3 client completes its handshake before the server judges
its certificate (pki.md pitfall 6): every refusal test READS and requires
that nothing comes back, that the proxy logged handshake_refused with the
expected category, and that the target never saw a connection."""

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

import harness
from harness import client_context, connect, remote_port_is, run_cli, split_chain, tls_probe

# categories that a chain check alone decides (the verify subcommand sees them)
CHAIN_REASONS = {"name_constraints", "expired", "not_yet_valid", "untrusted", "not_ca",
                 "chain_too_long", "bad_identity"}
PEER_MISMATCH = {"peer_not_allowed", "bad_identity"}


def _inbound(proxy, pki, echo, node=0, extra=()):
    n = pki[node]
    addr = "127.0.0.1:%d" % harness.free_port()
    p = proxy("inbound", "--listen", addr, "--target", echo.target, *pki.inbound_args(n), *extra,
              name="inbound(%s)" % n.name)
    return p, addr


def _assert_refused(outcome, proc, reason, backend, tunnel="inbound", reasons=None):
    assert outcome.stage != "echo" and not outcome.data, \
        "refused presentation got data back: %r\n%s" % (outcome, proc.describe())
    crit = {"tunnel": tunnel}
    if outcome.local_port is not None and tunnel == "inbound":
        crit["remote"] = remote_port_is(outcome.local_port)
    rec = proc.wait_event("handshake_refused", **crit)
    allowed = reasons or {reason}
    assert rec.get("reason") in allowed, "reason %r, expected %s: %r" % (rec.get("reason"), allowed, rec)
    assert rec.get("detail"), "handshake_refused without detail: %r" % rec
    if backend is not None:
        assert backend.accepted == 0, "target was connected for a refused peer"
    return rec


def _vector_reasons(vector):
    """The refusal categories acceptable for a forged vector.  BoringSSL,
    unlike OpenSSL, refuses a leaf with a CN but no SAN under a
    name-constrained issuer (X509_V_ERR_NAME_CONSTRAINTS_WITHOUT_SANS) before
    the Swaptacular identity rule is reached: for extra-cn either refusal is
    right."""
    if vector["name"] == "extra-cn":
        return {vector["reason"], "name_constraints"}
    return {vector["reason"]}


def _assert_echo(outcome, proc, message=b"ping peerproxy\n"):
    assert outcome.stage == "echo" and outcome.data == message, \
        "expected an echo, got %r\n%s" % (outcome, proc.describe())


# ---------------------------------------------------------------------------
# forged vectors


def test_client_vector(client_vector, pki, proxy, echo):
    """Each forged client presentation to node0's inbound (impersonating node1)."""
    inbound, addr = _inbound(proxy, pki, echo)
    vdir = pki.vector_dir(client_vector["name"])
    ctx = client_context(vdir / "chain.pem", vdir / "key.pem", cafile=pki[0].root_ca)
    outcome = tls_probe(addr, ctx)
    if client_vector["expect"] == "accepted":
        _assert_echo(outcome, inbound)
        assert outcome.version == "TLSv1.3"
        # after we close, the tunnel is logged with node1's id
        rec = inbound.wait_event("tunnel_closed")
        assert rec["peer"] == pki[1].id, rec
    else:
        assert client_vector["expect"] == "refused"
        # TLS 1.3: the client's handshake completes, the first read fails
        assert outcome.stage == "read", "expected the refusal on first read: %r" % outcome
        _assert_refused(outcome, inbound, client_vector["reason"], echo,
                        reasons=_vector_reasons(client_vector))
        assert inbound.running()


def test_server_vector(server_vector, pki, proxy, server):
    """A forged server presentation (impersonating node1) to node0's outbound."""
    vdir = pki.vector_dir(server_vector["name"])
    fake = harness.FakeTlsServer(vdir / "chain.pem", vdir / "key.pem")
    try:
        listen = "127.0.0.1:%d" % harness.free_port()
        out = proxy("outbound", "--listen", listen, "--target", fake.target,
                    *pki.outbound_args(pki[0], pki[1]), name="outbound(node0->fake node1)")
        data = harness.call_expecting_refusal(listen, b"ping peerproxy\n")
        if server_vector["expect"] == "accepted":
            assert data == b"ping peerproxy\n", out.describe()
        else:
            assert data == b"", "refused server got data through: %r" % data
            rec = out.wait_event("handshake_refused", tunnel="outbound")
            assert rec["reason"] == server_vector["reason"], rec
            assert not fake.results, "the fake server received application data"
    finally:
        fake.close()


def _leaf_subject(path):
    r = subprocess.run([harness.OPENSSL, "x509", "-noout", "-subject", "-in", str(path)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def test_x509_mode_skips_swaptacular_identity_rules(pki, proxy, echo):
    """--identity x509 on a Swaptacular anchor: the vectors that only the
    Swaptacular identity check refuses (plain X.509 verification passes)
    are accepted, which shows the flag really switches the rule set."""
    # BoringSSL (unlike OpenSSL) refuses a leaf that has a CN but no SAN under
    # a name-constrained issuer (X509_V_ERR_NAME_CONSTRAINTS_WITHOUT_SANS), in
    # any mode: such leaves do not show the switch, leave them out.
    vecs = [v for v in pki.vectors if v.get("side") == "client" and v.get("reason") == "bad_identity"
            and v.get("openssl_verify") == "OK"
            and "CN" not in _leaf_subject(pki.vector_dir(v["name"]) / "chain.pem")]
    if not vecs:
        pytest.skip("no client vector refused only by the identity rules")
    inbound, addr = _inbound(proxy, pki, echo, extra=["--identity", "x509"])
    for v in vecs:
        vdir = pki.vector_dir(v["name"])
        ctx = client_context(vdir / "chain.pem", vdir / "key.pem", cafile=pki[0].root_ca)
        _assert_echo(tls_probe(addr, ctx), inbound)


# ---------------------------------------------------------------------------
# allow-lists and --peer


def test_allow_peer(pki, proxy, echo):
    n0, n1, n2 = pki[0], pki[1], pki[2]
    inbound, addr = _inbound(proxy, pki, echo, extra=["--allow-peer", n1.id])
    outs = {}
    for n in (n1, n2):
        listen = "127.0.0.1:%d" % harness.free_port()
        proxy("outbound", "--listen", listen, "--target", addr, *pki.outbound_args(n, n0),
              name="outbound(%s->node0)" % n.name)
        outs[n.name] = listen
    # node1 is allowed
    assert harness.roundtrip(outs["node1"], b"from node1\n") == b"from node1\n"
    rec = inbound.wait_event("tunnel_closed")
    assert rec["peer"] == n1.id
    accepted = echo.accepted
    # node2 verifies fine but is not on the list
    mark = inbound.mark()
    data = harness.call_expecting_refusal(outs["node2"], b"from node2\n")
    assert data == b"", "node2 got through an --allow-peer list without it"
    rec = inbound.wait_event("handshake_refused", since=mark)
    assert rec["reason"] == "peer_not_allowed", rec
    assert n2.id in rec.get("detail", "") or n2.id in (rec.get("peer"), rec.get("claimed_peer")), \
        "the refusal should name the refused peer id: %r" % rec
    assert echo.accepted == accepted


def test_allow_peer_repeated(pki, proxy, echo):
    n0, n1, n2 = pki[0], pki[1], pki[2]
    inbound, addr = _inbound(proxy, pki, echo, extra=["--allow-peer", n2.id, "--allow-peer", n1.id])
    for n in (n1, n2):
        chain = pki.client_chain_file(n, n0)
        ctx = client_context(chain, n.server_key, cafile=n.peer_dir(n0) / "root-ca.crt")
        _assert_echo(tls_probe(addr, ctx), inbound)


def test_outbound_peer_mismatch(pki, proxy, server):
    n0, n1, n2 = pki[0], pki[1], pki[2]
    backend = server(harness.echo_handler)
    in_addr = "127.0.0.1:%d" % harness.free_port()
    proxy("inbound", "--listen", in_addr, "--target", backend.target, *pki.inbound_args(n1))
    listen = "127.0.0.1:%d" % harness.free_port()
    args = pki.outbound_args(n0, n1, peer=False) + ["--peer", n2.id]  # expects node2, meets node1
    out = proxy("outbound", "--listen", listen, "--target", in_addr, *args)
    assert harness.call_expecting_refusal(listen, b"hello\n") == b""
    rec = out.wait_event("handshake_refused", tunnel="outbound")
    assert rec["reason"] in PEER_MISMATCH, rec
    assert backend.accepted == 0


# ---------------------------------------------------------------------------
# TLS versions, missing certificate, handshake timeout


def _node1_ctx(pki, **kw):
    n0, n1 = pki[0], pki[1]
    chain = pki.client_chain_file(n1, n0)
    return client_context(chain, n1.server_key, cafile=n1.peer_dir(n0) / "root-ca.crt", **kw)


def test_tls12_client_refused_by_default(pki, proxy, echo):
    inbound, addr = _inbound(proxy, pki, echo)
    outcome = tls_probe(addr, _node1_ctx(pki, max_version=ssl.TLSVersion.TLSv1_2))
    assert outcome.stage == "handshake", "TLS 1.2 handshake should fail at once: %r" % outcome
    _assert_refused(outcome, inbound, "protocol_version", echo)
    # and a TLS 1.3 client with the same certificate is fine
    _assert_echo(tls_probe(addr, _node1_ctx(pki)), inbound)


def test_tls12_client_accepted_with_tls_min_12(pki, proxy, echo):
    inbound, addr = _inbound(proxy, pki, echo, extra=["--tls-min", "1.2"])
    outcome = tls_probe(addr, _node1_ctx(pki, max_version=ssl.TLSVersion.TLSv1_2))
    _assert_echo(outcome, inbound)
    assert outcome.version == "TLSv1.2"
    rec = inbound.wait_event("tunnel_closed")
    assert rec["peer"] == pki[1].id


def test_client_without_certificate(pki, proxy, echo):
    inbound, addr = _inbound(proxy, pki, echo)
    outcome = tls_probe(addr, client_context(cafile=pki[0].root_ca))
    assert outcome.stage == "read", outcome
    _assert_refused(outcome, inbound, "no_certificate", echo)


def test_handshake_timeout(pki, proxy, echo):
    inbound, addr = _inbound(proxy, pki, echo, extra=["--handshake-timeout", "500ms"])
    s = connect(addr, timeout=10)
    port = s.getsockname()[1]
    try:
        s.sendall(b"\x16\x03\x01")  # the start of a record, then silence
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b""
    finally:
        s.close()
    assert data == b""
    rec = inbound.wait_event("handshake_refused", remote=remote_port_is(port))
    assert rec["reason"] == "handshake_timeout", rec
    assert echo.accepted == 0


def test_plaintext_client_refused(pki, proxy, echo):
    inbound, addr = _inbound(proxy, pki, echo)
    s = connect(addr)
    port = s.getsockname()[1]
    try:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            data = harness.recv_all(s)
        except ConnectionResetError:
            data = b""
    finally:
        s.close()
    assert b"HTTP" not in data
    rec = inbound.wait_event("handshake_refused", remote=remote_port_is(port))
    assert rec["reason"] in ("handshake_error", "protocol_version"), rec
    assert echo.accepted == 0


# ---------------------------------------------------------------------------
# x509 mode (generic PKI)


X509_CASES = [
    # (id, allow flags, client cert stem, chain file or None, expected reason or None)
    ("no-allow-client1", [], "client", None),
    ("no-allow-client2", [], "client2", None),
    ("cn-pass", ["--allow-cn", "client1"], "client", None),
    ("cn-fail", ["--allow-cn", "client1"], "client2", "peer_not_allowed"),
    ("cn-two", ["--allow-cn", "nobody", "--allow-cn", "client2"], "client2", None),
    ("dns-pass", ["--allow-dns", "client1.example.org"], "client", None),
    ("dns-fail", ["--allow-dns", "client1.example.org"], "client2", "peer_not_allowed"),
    ("dns-not-cn", ["--allow-dns", "client1"], "client", "peer_not_allowed"),
    ("uri-pass", ["--allow-uri", "spiffe://example.org/client1"], "client", None),
    ("uri-fail", ["--allow-uri", "spiffe://example.org/client1"], "client2", "peer_not_allowed"),
    ("uri-prefix", ["--allow-uri", "spiffe://example.org/client"], "client", "peer_not_allowed"),
    ("nc-good", [], "nc-good", None),
    ("nc-bad", [], "nc-bad", "name_constraints"),
    ("other-ca", [], "other-client", "untrusted"),
]


@pytest.mark.parametrize("allow,stem,reason", [c[1:] for c in X509_CASES], ids=[c[0] for c in X509_CASES])
def test_x509_mode(generic_pki, proxy, echo, allow, stem, reason):
    g = generic_pki
    addr = "127.0.0.1:%d" % harness.free_port()
    inbound = proxy("inbound", "--listen", addr, "--target", echo.target, "--ca", g.path("ca.crt"),
                    "--cert", g.path("server.crt"), "--key", g.path("server.key"), *allow)
    chain = g.out / ("%s-chain.pem" % stem)
    certfile = chain if chain.exists() else g.path("%s.crt" % stem)
    ctx = client_context(certfile, g.path("%s.key" % stem), cafile=g.path("ca.crt"))
    outcome = tls_probe(addr, ctx)
    if reason is None:
        _assert_echo(outcome, inbound)
    else:
        _assert_refused(outcome, inbound, reason, echo)


def test_x509_outbound_with_server_name(generic_pki, proxy, echo):
    """outbound in x509 mode: --server-name sets SNI and checks the name."""
    g = generic_pki
    in_addr = "127.0.0.1:%d" % harness.free_port()
    proxy("inbound", "--listen", in_addr, "--target", echo.target, "--ca", g.path("ca.crt"),
          "--cert", g.path("server.crt"), "--key", g.path("server.key"))
    base = ["--target", in_addr, "--ca", g.path("ca.crt"), "--cert", g.path("client.crt"),
            "--key", g.path("client.key")]
    good = "127.0.0.1:%d" % harness.free_port()
    proxy("outbound", "--listen", good, *base, "--server-name", "localhost")
    assert harness.roundtrip(good, b"hi\n") == b"hi\n"
    bad = "127.0.0.1:%d" % harness.free_port()
    out_bad = proxy("outbound", "--listen", bad, *base, "--server-name", "not-localhost.example")
    before = echo.accepted
    try:
        data = harness.roundtrip(bad, b"hi\n")
    except ConnectionResetError:
        data = b""
    assert data == b""
    rec = out_bad.wait_event("handshake_refused", tunnel="outbound")
    assert rec["reason"] == "hostname_mismatch", rec
    assert echo.accepted == before


# ---------------------------------------------------------------------------
# verify subcommand


def test_verify_genuine(pki):
    n0, n1 = pki[0], pki[1]
    rc, out, err = run_cli(["verify", "--ca", n0.root_ca, "--cert", n1.server_crt,
                            "--chain", n1.peer_dir(n0) / "sub-ca.crt"])
    assert rc == 0, (rc, out, err)
    assert ("peer id: %s" % n1.id) in out, out
    rc, out, err = run_cli(["verify", "--ca", n0.root_ca, "--cert", n1.server_crt,
                            "--chain", n1.peer_dir(n0) / "sub-ca.crt", "--peer", n1.id])
    assert rc == 0, (rc, out, err)


def test_verify_peer_mismatch(pki):
    n0, n1, n2 = pki[0], pki[1], pki[2]
    rc, out, err = run_cli(["verify", "--ca", n0.root_ca, "--cert", n1.server_crt,
                            "--chain", n1.peer_dir(n0) / "sub-ca.crt", "--peer", n2.id])
    assert rc == 1, (rc, out, err)
    assert any(r in err for r in PEER_MISMATCH), err


def test_verify_without_cross_cert_untrusted(pki):
    n0, n1 = pki[0], pki[1]
    rc, out, err = run_cli(["verify", "--ca", n0.root_ca, "--cert", n1.server_crt])
    assert rc == 1, (rc, out, err)
    assert "untrusted" in err, err


def test_verify_client_vector(client_vector, pki, tmp_path):
    """verify gives the same verdict as the inbound for the chain-level vectors."""
    if client_vector["expect"] == "refused" and client_vector["reason"] not in CHAIN_REASONS:
        pytest.skip("not decided by the chain alone")
    leaf, rest = split_chain(pki.vector_dir(client_vector["name"]) / "chain.pem", tmp_path)
    args = ["verify", "--ca", pki[0].root_ca, "--cert", leaf]
    if rest:
        args += ["--chain", rest]
    rc, out, err = run_cli(args)
    if client_vector["expect"] == "accepted":
        assert rc == 0, (rc, out, err)
        assert "peer id: %s" % pki[1].id in out, out
    else:
        assert rc == 1, (rc, out, err)
        reasons = [r for r in _vector_reasons(client_vector) if "refused: %s:" % r in err]
        assert reasons, "stderr should carry the category %r: %r" % (client_vector["reason"], err)
        reason = reasons[0]
        # a description follows the category
        tail = err.split(reason, 1)[1].strip(" :\n")
        assert len(tail) >= 5, "no description after the category: %r" % err


@pytest.mark.parametrize("stem,chain,rc_want,reason", [
    ("client", None, 0, None),
    ("nc-good", "nc-ca.crt", 0, None),
    ("nc-bad", "nc-ca.crt", 1, "name_constraints"),
    ("other-client", None, 1, "untrusted"),
])
def test_verify_x509(generic_pki, stem, chain, rc_want, reason):
    g = generic_pki
    args = ["verify", "--ca", g.path("ca.crt"), "--cert", g.path(stem + ".crt")]
    if chain:
        args += ["--chain", g.path(chain)]
    rc, out, err = run_cli(args)
    assert rc == rc_want, (rc, out, err)
    if reason:
        assert reason in err, err


def test_node_data_outbound_trusts_only_the_peers_root_and_requires_its_id(
        server_vector, pki, proxy, server, tmpdir_short):
    """What node0's socket for node1 in node data mode accepts as node1:
    the forged server (node1's root, another serialNumber) is refused as
    not the peer; node2's real server (its own root) is refused as
    untrusted; node1's real inbound gets through."""
    n0, n1, n2 = pki[0], pki[1], pki[2]
    node = Path(tmpdir_short) / "node0"
    shutil.copytree(n0.dir, node)
    stomp = node / "peers" / n1.id / "nodeinfo" / "stomp.toml"
    config = Path(tmpdir_short) / "node0.yaml"
    config.write_text(f"""workers: 1
nodedata:
  path: {node}
  cert: {node / "server.crt"}
  key: {node / "server.key"}
  outbound: {{socket_dir: {tmpdir_short}/s}}
""")
    sock = "unix:%s/s/%s.sock" % (tmpdir_short, n1.id)
    vdir = pki.vector_dir(server_vector["name"])
    fake = harness.FakeTlsServer(vdir / "chain.pem", vdir / "key.pem")
    node2 = harness.FakeTlsServer(n2.server_crt, n2.server_key)
    in_addr = "127.0.0.1:%d" % harness.free_port()
    app = server(harness.echo_handler)
    proxy("inbound", "--listen", in_addr, "--target", app.target, "--ca", n1.root_ca,
          "--cert", n1.server_crt, "--key", n1.server_key)
    try:
        for target, reason in ((fake.target, server_vector["reason"]),
                               (node2.target, "untrusted"), (in_addr, None)):
            stomp.write_text('servers = ["%s"]\n' % target)
            p = proxy("run", "--config", config)
            if reason is None:
                data = harness.roundtrip(sock, b"ping peerproxy\n")
                assert data == b"ping peerproxy\n", p.describe()
            else:
                data = harness.call_expecting_refusal(sock, b"ping peerproxy\n")
                assert data == b"", "refused server got data through: %r" % data
                rec = p.wait_event("handshake_refused", tunnel="peer-" + n1.id)
                assert rec["reason"] == reason, rec
            p.stop()
        assert not fake.results and not node2.results
    finally:
        fake.close()
        node2.close()
