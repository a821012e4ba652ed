"""Data path: client -> outbound(node0) =TLS=> inbound(node1) -> backend.

Bytes must arrive intact in both directions, half-closes must propagate
while the other direction keeps flowing, failures must close the client
cleanly and be logged with the right reason, and tunnel_closed lines must
carry the peer id and exact byte counts."""

import hashlib
import resource
import subprocess
import sys
from pathlib import Path
import os
import re
import socket
import threading
import time

import pytest

import harness
from harness import (GREETING, connect, recv_all, recv_line, response_for, roundtrip,
                     tunnel_closed_for)

DURATION = re.compile(r"^\d+\.\d{3}s$")


def test_small_echo_and_ready_lines(link):
    lk = link()
    # the listener announcements precede ready
    rec = lk.inbound.events("listening", tunnel="inbound")
    assert rec and rec[0]["addr"].endswith(lk.in_addr.rsplit(":", 1)[1]), lk.inbound.describe()
    rec = lk.outbound.events("listening", tunnel="outbound")
    assert rec and rec[0]["addr"].endswith(lk.out_addr.rsplit(":", 1)[1]), lk.outbound.describe()
    assert len(lk.inbound.events("ready")) == 1
    assert len(lk.outbound.events("ready")) == 1

    # interactive, line by line, without any half-close
    s = connect(lk.out_addr)
    try:
        for i in range(5):
            line = b"line %d %s\n" % (i, os.urandom(8).hex().encode())
            s.sendall(line)
            assert recv_line(s) == line
    finally:
        s.close()


@pytest.mark.slow
def test_64mib_each_way_concurrently(link):
    lk = link()
    size = 64 << 20
    t0 = time.monotonic()
    sent, received, n, local = harness.streaming_exchange(lk.out_addr, size, timeout=90)
    elapsed = time.monotonic() - t0
    assert n == size, "received %d of %d bytes" % (n, size)
    assert received == sent, "sha256 differs: sent %s received %s" % (sent, received)
    res = lk.backend.wait_results(1)
    assert res[0]["received"] == size and res[0]["sha256"] == sent
    out_rec = tunnel_closed_for(lk.outbound, local[1])
    assert int(out_rec["bytes_up"]) == size and int(out_rec["bytes_down"]) == size, out_rec
    in_rec = lk.inbound.wait_event("tunnel_closed")
    assert int(in_rec["bytes_up"]) == size and int(in_rec["bytes_down"]) == size, in_rec
    print("64 MiB each way in %.2fs" % elapsed)


def test_client_half_close_still_gets_full_reply(link):
    lk = link()
    payload = os.urandom(4 << 20)
    s = connect(lk.out_addr)
    try:
        # send everything and FIN before reading a single byte: most of the
        # echo must flow back after our half-close
        sender = threading.Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)))
        sender.start()
        got = recv_all(s)
        sender.join(10)
    finally:
        s.close()
    assert len(got) == len(payload)
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    # the backend saw our FIN as EOF (its handler returned)
    assert lk.backend.wait_results(1)[0]["received"] == len(payload)


def test_request_then_close(link, server):
    backend = server(harness.request_then_close_handler)
    lk = link(backend=backend)
    request = b"GET /ledger HTTP/1.0\r\n\r\n" + os.urandom(100000)
    got = roundtrip(lk.out_addr, request)
    assert got == response_for(request), "response differs (%d bytes, head %r)" % (len(got), got[:80])
    assert backend.wait_results(1)[0]["received"] == len(request)


def test_server_half_closes_first(link, server):
    """The backend sends, FINs, then keeps reading: the client sees EOF and
    can still send afterwards."""
    backend = server(harness.server_half_closes_first_handler)
    lk = link(backend=backend)
    s = connect(lk.out_addr)
    try:
        greeting = recv_all(s)  # until EOF: the server's half-close reached us
        assert greeting == GREETING, "got %d bytes" % len(greeting)
        late = os.urandom(1 << 20)
        s.sendall(late)
        s.shutdown(socket.SHUT_WR)
        assert s.recv(1) == b""
    finally:
        s.close()
    res = backend.wait_results(1)[0]
    assert res["received"] == len(late), res
    assert res["sha256"] == hashlib.sha256(late).hexdigest()


def test_server_initiated_close(link, server):
    backend = server(harness.server_closes_handler)
    lk = link(backend=backend)
    s = connect(lk.out_addr)
    try:
        s.sendall(b"hello there\n")
        got = recv_all(s)  # must end with EOF although we never closed
    finally:
        s.close()
    assert got == b"OK hello there\n" + GREETING, "got %d bytes, head %r" % (len(got), got[:40])
    rec = lk.inbound.wait_event("tunnel_closed")
    assert rec["reason"] == "done", rec


def test_unix_sockets_on_both_plain_sides(link, server, tmpdir_short):
    backend = server(harness.echo_handler, kind="unix")
    out_listen = "unix:" + os.path.join(tmpdir_short, "out.sock")
    lk = link(backend=backend, out_listen=out_listen)
    rec = lk.outbound.events("listening", tunnel="outbound")
    assert rec and tmpdir_short in rec[0]["addr"], lk.outbound.describe()
    payload = os.urandom(1 << 20)
    assert roundtrip(out_listen, payload) == payload
    assert backend.wait_results(1)[0]["received"] == len(payload)
    rec = lk.inbound.wait_event("tunnel_closed")
    assert rec["reason"] == "done" and int(rec["bytes_up"]) == len(payload), rec


@pytest.mark.skipif(not harness.have_ipv6_loopback(), reason="no ::1 on this machine")
def test_ipv6_everywhere(link, server):
    backend = server(harness.echo_handler, kind="tcp6")
    in_listen = "[::1]:%d" % harness.free_port()
    out_listen = "[::1]:%d" % harness.free_port()
    lk = link(backend=backend, in_listen=in_listen, out_listen=out_listen)
    payload = os.urandom(256 << 10)
    assert roundtrip(out_listen, payload) == payload
    out_rec = lk.outbound.wait_event("tunnel_closed")
    assert "::1" in out_rec["remote"], out_rec
    in_rec = lk.inbound.wait_event("tunnel_closed")
    assert "::1" in in_rec["remote"], in_rec
    # the IPv4 side of the same port is not served
    with pytest.raises(OSError):
        connect("127.0.0.1:%d" % int(out_listen.rsplit(":", 1)[1]), timeout=5).close()


def _expect_clean_close(addr):
    s = connect(addr)
    try:
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            pytest.fail("client connection was reset instead of closed cleanly")
        assert data == b"", "got data %r from a tunnel whose target is down" % data
        return s.getsockname()
    finally:
        s.close()


def test_backend_down_closes_client_cleanly(link):
    dead = "127.0.0.1:%d" % harness.free_port()  # reserved, nothing listens
    lk = link(in_target=dead)
    _expect_clean_close(lk.out_addr)
    rec = lk.inbound.wait_event("tunnel_closed")
    assert rec["reason"] == "connect_failed", rec
    assert int(rec["bytes_up"]) == 0 and int(rec["bytes_down"]) == 0, rec
    # the proxy is still serving afterwards
    assert lk.inbound.running()


def test_inbound_down_closes_client_cleanly(link):
    dead = "127.0.0.1:%d" % harness.free_port()
    lk = link(out_target=dead)
    local = _expect_clean_close(lk.out_addr)
    rec = tunnel_closed_for(lk.outbound, local[1])
    assert rec["reason"] == "connect_failed", rec


def test_outbound_failover_to_live_target(link):
    dead1 = "127.0.0.1:%d" % harness.free_port()
    dead2 = "127.0.0.1:%d" % harness.free_port()
    in_listen = "127.0.0.1:%d" % harness.free_port()
    lk = link(in_listen=in_listen, out_target=",".join([dead1, in_listen, dead2]))
    for i in range(10):  # random order: some attempts must fail over
        payload = b"attempt %d " % i + os.urandom(1000)
        assert roundtrip(lk.out_addr, payload) == payload, "attempt %d" % i
    recs = lk.outbound.wait_events("tunnel_closed", 10)
    assert all(r["reason"] == "done" for r in recs), recs


@pytest.mark.slow
def test_500_concurrent_tunnels(link):
    lk = link()
    n = 500
    payloads = [b"%04d:" % i + os.urandom(2000) for i in range(n)]
    t0 = time.monotonic()
    results = harness.many_roundtrips(lk.out_addr, payloads, timeout=90)
    elapsed = time.monotonic() - t0
    bad = [(i, r if isinstance(r, Exception) else "%d bytes" % len(r))
           for i, r in enumerate(results) if r != payloads[i]]
    assert not bad, "%d of %d tunnels failed in %.1fs, first: %r" % (len(bad), n, elapsed, bad[:5])
    recs = lk.inbound.wait_events("tunnel_closed", n, timeout=30)
    assert all(r["reason"] == "done" for r in recs), [r for r in recs if r["reason"] != "done"][:3]
    assert sum(int(r["bytes_up"]) for r in recs) == sum(map(len, payloads))
    lk.outbound.wait_events("tunnel_closed", n, timeout=30)
    print("500 tunnels in %.2fs" % elapsed)


def test_rsa3072_tree_roundtrip(link, pki_rsa):
    # profile fidelity: the generator really made RSA-3072 / sha256WithRSA
    for node in pki_rsa.nodes:
        text = harness.cert_text(node.server_crt)
        assert "Public-Key: (3072 bit)" in text and "sha256WithRSAEncryption" in text, text[:600]
        cross = harness.cert_text(node.peer_dir(pki_rsa[1 - pki_rsa.nodes.index(node)]) / "sub-ca.crt")
        assert "Name Constraints" in cross
    lk = link(tree=pki_rsa)
    payload = os.urandom(512 << 10)
    assert roundtrip(lk.out_addr, payload) == payload
    rec = lk.inbound.wait_event("tunnel_closed")
    assert rec["peer"] == pki_rsa[0].id, rec
    rec = lk.outbound.wait_event("tunnel_closed")
    assert rec["peer"] == pki_rsa[1].id, rec


def test_tunnel_closed_carries_peer_and_exact_counts(link, server, pki):
    backend = server(harness.request_then_close_handler)
    lk = link(a=2, b=0, backend=backend)  # node2 -> node0: ids of both lengths
    request = os.urandom(123457)
    s = connect(lk.out_addr)
    local_port = s.getsockname()[1]
    try:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        got = recv_all(s)
    finally:
        s.close()
    expected = response_for(request)
    assert got == expected
    up, down = len(request), len(expected)
    assert up != down

    out_rec = tunnel_closed_for(lk.outbound, local_port)
    assert out_rec["tunnel"] == "outbound"
    assert out_rec["peer"] == pki[0].id, out_rec
    assert int(out_rec["bytes_up"]) == up and int(out_rec["bytes_down"]) == down, out_rec
    assert out_rec["reason"] == "done", out_rec
    assert DURATION.match(out_rec["duration"]), out_rec
    assert re.fullmatch(r"[0-9a-f]+", out_rec["conn"]), out_rec

    in_rec = lk.inbound.wait_event("tunnel_closed")
    assert in_rec["tunnel"] == "inbound"
    assert in_rec["peer"] == pki[2].id, in_rec
    assert int(in_rec["bytes_up"]) == up and int(in_rec["bytes_down"]) == down, in_rec
    assert in_rec["reason"] == "done", in_rec
    assert DURATION.match(in_rec["duration"]), in_rec


def test_idle_timeout_closes_tunnel(link):
    lk = link(in_extra=["--idle-timeout", "700ms"])
    s = connect(lk.out_addr, timeout=10)
    t0 = time.monotonic()
    try:
        s.sendall(b"ping\n")
        assert recv_line(s) == b"ping\n"
        try:
            data = s.recv(4096)  # nothing more is sent: the proxy must end it
        except ConnectionResetError:
            data = b""
        elapsed = time.monotonic() - t0
    finally:
        s.close()
    assert data == b""
    assert 0.6 <= elapsed < 8, "closed after %.2fs with --idle-timeout 700ms" % elapsed
    rec = lk.inbound.wait_event("tunnel_closed")
    assert rec["reason"] == "idle_timeout", rec


@pytest.mark.parametrize("resumption", ["on", "off"])
def test_session_resumption(link, resumption):
    """With resumption on, the second tunnel to the same target resumes the
    TLS session (and is verified again: the peer id is still known); off,
    every tunnel makes a full handshake.  One worker each, so the session
    cache the outbound keeps per worker is the same for both tunnels."""
    flags = ("--workers", "1", "--session-resumption", resumption)
    lk = link(out_extra=flags, in_extra=flags)
    for i in range(3):
        # No half-close before the reply: BoringSSL ignores session tickets
        # that arrive after its side sent close_notify.
        msg = b"tunnel %d\n" % i
        s = connect(lk.out_addr)
        try:
            s.sendall(msg)
            assert recv_line(s) == msg
        finally:
            s.close()
        lk.inbound.wait_events("tunnel_closed", i + 1)
    closed = lk.inbound.wait_events("tunnel_closed", 3)
    assert len(closed) == 3, lk.inbound.describe()
    out_closed = lk.outbound.wait_events("tunnel_closed", 3)
    want = ["no", "yes", "yes"] if resumption == "on" else ["no", "no", "no"]
    assert [r.get("resumed") for r in closed] == want, lk.inbound.describe()
    assert [r.get("resumed") for r in out_closed] == want, lk.outbound.describe()
    for r in closed:
        assert r["peer"] == lk.a.id, r
    for r in out_closed:
        assert r["peer"] == lk.b.id, r


@pytest.mark.slow
def test_soak_concurrent_tunnels(link):
    """PEERPROXY_SOAK_TUNNELS (default 10000) tunnels open at the same time,
    each carrying a distinct payload echoed back and verified byte for byte,
    then all closed cleanly."""
    # Each proxy holds two descriptors per tunnel: the hard limit on open
    # files caps the count (20000 in some sandboxes: about 9,700 tunnels).
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    cap = (hard - 600) // 2 if hard != resource.RLIM_INFINITY else 10000
    n = min(int(os.environ.get("PEERPROXY_SOAK_TUNNELS", "10000")), cap)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    echo = subprocess.Popen([sys.executable, str(Path(__file__).with_name("selector_echo.py"))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(echo.stdout.readline())
        lk = link(in_target="127.0.0.1:%d" % port)
        base = {proc.name: harness.rss_kib(proc.pid) for proc in (lk.outbound, lk.inbound)}
        deadline = time.monotonic() + 120
        socks, payloads = [], []
        # connect in batches so the listen backlogs never overflow
        for start in range(0, n, 500):
            batch = []
            for i in range(start, min(n, start + 500)):
                s = socket.create_connection(("127.0.0.1", int(lk.out_addr.rsplit(":", 1)[1])), timeout=30)
                p = b"%06d:" % i + os.urandom(250)
                s.sendall(p)
                batch.append(s)
                payloads.append(p)
            for s, p in zip(batch, payloads[start:]):
                got = b""
                while len(got) < len(p):
                    chunk = s.recv(len(p) - len(got))
                    assert chunk, "tunnel %d closed early" % len(socks)
                    got += chunk
                assert got == p
                socks.append(s)
            assert time.monotonic() < deadline, "soak too slow: %d tunnels open" % len(socks)
        assert len(socks) == n
        # all n are open at once: each proxy holds two sockets per tunnel
        held = {}
        for proc in (lk.outbound, lk.inbound):
            fds = len(os.listdir("/proc/%d/fd" % proc.pid))
            assert fds >= 2 * n, "%s has %d descriptors for %d tunnels" % (proc.name, fds, n)
            held[proc.name] = harness.rss_kib(proc.pid)
        mark = {proc.name: proc.mark() for proc in (lk.outbound, lk.inbound)}
        for s in socks:
            s.close()
        recs = lk.inbound.wait_events("tunnel_closed", n, timeout=120)
        assert len(recs) >= n, "%d of %d tunnels logged closed" % (len(recs), n)
        assert all(r["reason"] in ("done", "client_reset") for r in recs), \
            [r for r in recs if r["reason"] not in ("done", "client_reset")][:3]
        assert sum(int(r["bytes_up"]) for r in recs) == sum(map(len, payloads))
        # The heap the tunnels used goes back to the system once they are
        # gone (glibc alone would keep it: malloc_trim).  A trim may come
        # while they are still closing, and then another (at most 10 s
        # later) if enough of them were left: wait trim by trim until at
        # least half of what the tunnels took is back.
        for proc in (lk.outbound, lk.inbound):
            grew = held[proc.name] - base[proc.name]
            deadline = time.monotonic() + 60
            trims = proc.wait_events("memory_trimmed", 1, since=mark[proc.name], timeout=30)
            while True:
                for t in trims:
                    peak, left = int(t["tunnels_peak"]), int(t["tunnels_open"])
                    assert peak - left >= 128 and left <= peak // 2, t
                if n < 1000 or harness.sanitized():
                    break  # too little to see, or ASan's allocator holds it
                now = harness.rss_kib(proc.pid)
                if now - base[proc.name] < grew // 2:
                    assert sum(int(t["rss_before_kib"]) - int(t["rss_after_kib"])
                               for t in trims) > 0, trims
                    break
                remaining = deadline - time.monotonic()
                assert remaining > 0, (proc.name, base[proc.name], held[proc.name], now, trims)
                trims = proc.wait_events("memory_trimmed", len(trims) + 1,
                                         since=mark[proc.name], timeout=remaining)
        print("soak: %d concurrent tunnels verified" % n)
    finally:
        echo.stdin.close()
        try:
            echo.wait(timeout=10)
        except subprocess.TimeoutExpired:
            echo.kill()


def test_tunnels_spread_across_workers(link):
    """Each worker has its own SO_REUSEPORT listener: the kernel spreads
    connections over all of them."""
    flags = ("--workers", "2")
    lk = link(out_extra=flags, in_extra=flags)
    n = 40
    for i in range(n):
        msg = b"spread %d\n" % i
        assert roundtrip(lk.out_addr, msg) == msg
    for proc in (lk.outbound, lk.inbound):
        recs = proc.wait_events("tunnel_closed", n)
        workers = {r["worker"] for r in recs}
        assert workers == {"0", "1"}, "%s used workers %s" % (proc.name, sorted(workers))


def test_quiet_log_levels_still_say_ready(link):
    """--log-level error hides tunnel lines but never the readiness
    lines scripts and probes wait for (link() itself waits for ready)."""
    flags = ("--log-level", "error")
    lk = link(out_extra=flags, in_extra=flags)
    assert roundtrip(lk.out_addr, b"quiet\n") == b"quiet\n"
    for proc in (lk.outbound, lk.inbound):
        assert proc.events("listening") and proc.events("ready")
        assert not proc.events("tunnel_closed"), proc.describe()
