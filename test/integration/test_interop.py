"""Interoperability with OpenSSL 3's own tools on both TLS sides:
`openssl s_client` calls peerproxy's inbound, and peerproxy's outbound calls
`openssl s_server`, each with the Swaptacular cross-signed chains."""

import os
import re
import subprocess

import harness
from harness import OPENSSL, Proc, connect, recv_line


def test_s_client_calls_inbound(pki, proxy, echo, procs):
    n0, n1 = pki[0], pki[1]
    addr = "127.0.0.1:%d" % harness.free_port()
    inbound = proxy("inbound", "--listen", addr, "--target", echo.target, *pki.inbound_args(n0))
    client = Proc([OPENSSL, "s_client", "-connect", addr,
                   "-cert", n1.server_crt, "-cert_chain", n1.peer_dir(n0) / "sub-ca.crt",
                   "-key", n1.server_key, "-CAfile", n1.peer_dir(n0) / "root-ca.crt",
                   "-verify_return_error", "-tls1_3", "-quiet"],
                  name="s_client", stdin=subprocess.PIPE)
    procs.append(client)
    lines = [b"hello from s_client %s\n" % os.urandom(6).hex().encode() for _ in range(3)]
    for line in lines:
        client.popen.stdin.write(line)
        client.popen.stdin.flush()
        want = line.decode().rstrip("\n")
        client.wait_stdout(lambda l, w=want: l == w, what="the echo %r" % want)
    # s_client verified the inbound's server certificate against node0's root
    assert not any("verify error" in l for l in client.err_lines), client.describe()
    client.stop()
    rec = inbound.wait_event("tunnel_closed")
    assert rec["peer"] == n1.id, rec
    assert int(rec["bytes_up"]) == sum(map(len, lines)), rec


def test_s_client_without_client_cert_is_refused(pki, proxy, echo, procs):
    n0 = pki[0]
    addr = "127.0.0.1:%d" % harness.free_port()
    inbound = proxy("inbound", "--listen", addr, "--target", echo.target, *pki.inbound_args(n0))
    r = subprocess.run([OPENSSL, "s_client", "-connect", addr, "-CAfile", str(n0.root_ca),
                        "-verify_return_error", "-tls1_3", "-quiet"],
                       input=b"hello\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    assert b"hello" not in r.stdout
    rec = inbound.wait_event("handshake_refused")
    assert rec["reason"] == "no_certificate", rec
    assert echo.accepted == 0


def _start_s_server(pki, node, peer_of, procs, extra=()):
    port = harness.free_port()
    server = Proc([OPENSSL, "s_server", "-accept", "127.0.0.1:%d" % port,
                   "-Verify", "1", "-verify_return_error", "-CAfile", node.root_ca,
                   "-cert", node.server_crt, "-key", node.server_key, "-tls1_3", "-rev", *extra],
                  name="s_server", stdin=subprocess.PIPE)
    procs.append(server)
    server.wait_stdout(lambda l: l.strip() == "ACCEPT", what="s_server ACCEPT")
    return server, "127.0.0.1:%d" % port


def test_outbound_calls_s_server(pki, proxy, procs):
    n0, n1 = pki[0], pki[1]
    server, target = _start_s_server(pki, n1, n0, procs)
    listen = "127.0.0.1:%d" % harness.free_port()
    out = proxy("outbound", "--listen", listen, "--target", target, *pki.outbound_args(n0, n1))
    s = connect(listen)
    try:
        for text in (b"hello world", b"peerproxy interop " + os.urandom(4).hex().encode()):
            s.sendall(text + b"\n")
            got = recv_line(s)
            assert got.rstrip(b"\r\n") == text[::-1], "s_server -rev answered %r to %r" % (got, text)
    finally:
        s.close()
    # s_server verified the client chain: leaf (node0) -> cross cert -> node1's root
    # (its report reaches us through a reader thread: wait for all of it)
    wanted = (r"Verification: OK|verify return:1",
              r"Peer certificate:.*serialNumber = %s" % n0.id,
              r"depth=1 .*serialNumber = %s" % n0.id)

    def reported(_):
        text = "\n".join(server.err_lines)
        return all(re.search(w, text) for w in wanted)
    try:
        server.wait_for(reported, what="s_server's verification report")
    except harness.ProcessFailure:
        pass  # the asserts below say which part is missing
    err = "\n".join(server.err_lines)
    assert "Verification: OK" in err or "verify return:1" in err, server.describe()
    assert not re.search(r"verify error", err), server.describe()
    assert re.search(r"Peer certificate:.*serialNumber = %s" % n0.id, err), server.describe()
    assert re.search(r"depth=1 .*serialNumber = %s" % n0.id, err), \
        "the outbound did not present the cross certificate (--chain):\n" + server.describe()
    rec = out.wait_event("tunnel_closed")
    assert rec["peer"] == n1.id, rec
    assert rec["reason"] == "done", rec


def test_outbound_refuses_s_server_of_wrong_node(pki, proxy, procs):
    """An s_server presenting node2's genuine certificate to node0's
    outbound that expects node1: refused, nothing goes through."""
    n0, n1, n2 = pki[0], pki[1], pki[2]
    server, target = _start_s_server(pki, n2, n0, procs)
    listen = "127.0.0.1:%d" % harness.free_port()
    out = proxy("outbound", "--listen", listen, "--target", target, *pki.outbound_args(n0, n1))
    assert harness.call_expecting_refusal(listen, b"hello\n") == b""
    rec = out.wait_event("handshake_refused", tunnel="outbound")
    # node2's chain does not lead to node1's root: untrusted
    assert rec["reason"] == "untrusted", rec
