"""Telling the unmodified app who called: the PROXY protocol header (v1,
v2 with TLVs) and the HTTP identity headers, against a Python app that
reads them exactly and against HAProxy as the app."""

import shutil
import socket
import ssl
import struct
import threading
import time

import pytest

import harness
from harness import connect, recv_all, run_cli

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


# --------------------------------------------------------------------------
# apps

def _recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        data = conn.recv(n - len(buf))
        if not data:
            raise AssertionError("EOF after %d of %d header bytes" % (len(buf), n))
        buf += data
    return buf


def _tlvs(data):
    """TLVs of DATA as a list of (type, value); they must fill it exactly."""
    out = []
    while data:
        assert len(data) >= 3, "truncated TLV"
        t, n = data[0], struct.unpack("!H", data[1:3])[0]
        assert len(data) >= 3 + n, "TLV 0x%02x overruns" % t
        out.append((t, data[3:3 + n]))
        data = data[3 + n:]
    return out


def read_proxy_header(conn):
    """Read one PROXY header (v1 or v2) from CONN: a dict."""
    first = _recv_exact(conn, 12)
    if first == V2_SIGNATURE:
        rest = _recv_exact(conn, 4)
        ver_cmd, fam, length = rest[0], rest[1], struct.unpack("!H", rest[2:4])[0]
        body = _recv_exact(conn, length)
        h = {"version": 2, "ver_cmd": ver_cmd, "fam": fam}
        if fam == 0x11:
            h["src"] = (socket.inet_ntop(socket.AF_INET, body[0:4]), struct.unpack("!H", body[8:10])[0])
            h["dst"] = (socket.inet_ntop(socket.AF_INET, body[4:8]), struct.unpack("!H", body[10:12])[0])
            body = body[12:]
        elif fam == 0x21:
            h["src"] = (socket.inet_ntop(socket.AF_INET6, body[0:16]), struct.unpack("!H", body[32:34])[0])
            h["dst"] = (socket.inet_ntop(socket.AF_INET6, body[16:32]), struct.unpack("!H", body[34:36])[0])
            body = body[36:]
        h["tlvs"] = _tlvs(body)
        return h
    line = first
    while not line.endswith(b"\r\n"):
        assert len(line) < 107, "v1 line too long: %r" % line
        line += _recv_exact(conn, 1)
    return {"version": 1, "line": line.decode("ascii")}


def _echo_until_eof(read, conn):
    """Echo what read(n) returns to CONN until EOF, half-close, and return
    all of it."""
    data = b""
    while True:
        chunk = read(65536)
        if not chunk:
            break
        data += chunk
        conn.sendall(chunk)
    conn.shutdown(socket.SHUT_WR)
    return data


def proxy_echo_handler(conn, server):
    """The app: read the PROXY header, then echo until EOF."""
    h = read_proxy_header(conn)
    h["data"] = _echo_until_eof(conn.recv, conn)
    return h


def _read_request(f):
    """One HTTP/1.1 request from the file F, or None at EOF: (head lines,
    body)."""
    lines = []
    while True:
        line = f.readline()
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        lines.append(line.rstrip(b"\r\n").decode("latin-1"))
    length, chunked = 0, False
    for l in lines[1:]:
        name, _, value = l.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        if name.strip().lower() == "transfer-encoding":
            chunked = value.strip().lower() == "chunked"
    if not chunked:
        return lines, f.read(length)
    body = b""
    while True:
        size = int(f.readline().split(b";")[0], 16)
        body += f.read(size)
        f.readline()  # the chunk's CRLF, or the empty trailer section
        if size == 0:
            return lines, body


def http_echo_handler(conn, server):
    """An HTTP/1.1 app answering each request with its head lines as the
    body; returns every head it saw."""
    f = conn.makefile("rb")
    heads = []
    while True:
        req = _read_request(f)
        if req is None:
            break
        lines, body = req
        heads.append(lines)
        payload = ("\n".join(lines) + "\n").encode("latin-1") + body
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload)
    conn.shutdown(socket.SHUT_WR)
    return heads


def read_response(f):
    """Status line and body of one Content-Length response from file F."""
    status = f.readline()
    length = 0
    while True:
        line = f.readline()
        assert line, "EOF inside a response head after %r" % status
        if line == b"\r\n":
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status.decode("latin-1").strip(), f.read(length)


def leaf_der(path):
    return ssl.PEM_cert_to_DER_cert(harness.pem_certs(path).split("-----END CERTIFICATE-----")[0]
                                    + "-----END CERTIFICATE-----\n")


def _port(addr):
    return int(addr.rsplit(":", 1)[1])


# --------------------------------------------------------------------------
# PROXY protocol

def test_proxy_v2_carries_the_exact_tlvs(link, server, pki):
    app = server(proxy_echo_handler)
    lk = link(backend=app, in_extra=("--proxy-protocol", "v2", "--proxy-protocol-cert"))
    s = connect(lk.out_addr)
    s.sendall(b"first app bytes\n")
    s.shutdown(socket.SHUT_WR)
    assert recv_all(s) == b"first app bytes\n"
    s.close()
    h = app.wait_results(1)[0]
    assert h["data"] == b"first app bytes\n", "the header precedes the caller's bytes, nothing else"
    assert h["version"] == 2 and h["ver_cmd"] == 0x21 and h["fam"] == 0x11, h
    rec = lk.inbound.wait_event("tunnel_closed", peer=lk.a.id)
    assert h["src"][0] == "127.0.0.1" and "%s:%d" % h["src"] == rec["remote"], (h, rec)
    assert h["dst"] == ("127.0.0.1", _port(lk.in_addr)), h
    tlv = dict(h["tlvs"])
    assert tlv[0xE0] == lk.a.id.encode(), "peer id TLV"
    assert tlv[0x05] == rec["conn"].encode(), "unique id = the logged conn id"
    assert tlv[0xE1] == leaf_der(lk.a.server_crt), "the caller's DER leaf"
    ssl_tlv = tlv[0x20]
    assert ssl_tlv[0] & 0x07 == 0x07 and ssl_tlv[1:5] == b"\0\0\0\0", ssl_tlv[:5]
    sub = dict(_tlvs(ssl_tlv[5:]))
    assert sub[0x21] == b"TLSv1.3"
    assert sub[0x23].startswith(b"TLS_"), sub
    assert 0x22 not in sub, "Swaptacular leaves have no CN"
    assert int(rec["bytes_down"]) == len(b"first app bytes\n")


def test_proxy_v1_tcp4(link, server):
    app = server(proxy_echo_handler)
    lk = link(backend=app, in_extra=("--proxy-protocol", "v1"))
    assert harness.roundtrip(lk.out_addr, b"v1 data\n") == b"v1 data\n"
    h = app.wait_results(1)[0]
    rec = lk.inbound.wait_event("tunnel_closed", peer=lk.a.id)
    sport = _port(rec["remote"])
    assert h["line"] == "PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n" % (sport, _port(lk.in_addr)), h
    assert h["data"] == b"v1 data\n"


@pytest.mark.skipif(not harness.have_ipv6_loopback(), reason="no IPv6 loopback")
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_proxy_tcp6(link, server, version):
    app = server(proxy_echo_handler)
    in_listen = "[::1]:%d" % harness.free_port()
    lk = link(backend=app, in_listen=in_listen, in_extra=("--proxy-protocol", version))
    assert harness.roundtrip(lk.out_addr, b"six\n") == b"six\n"
    h = app.wait_results(1)[0]
    rec = lk.inbound.wait_event("tunnel_closed", peer=lk.a.id)
    sport = _port(rec["remote"])
    if version == "v1":
        assert h["line"] == "PROXY TCP6 ::1 ::1 %d %d\r\n" % (sport, _port(in_listen)), h
    else:
        assert h["fam"] == 0x21 and h["src"] == ("::1", sport) and h["dst"] == ("::1", _port(in_listen)), h
        assert dict(h["tlvs"])[0xE0] == lk.a.id.encode()


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_proxy_unix_caller(link, server, tmpdir_short, version):
    app = server(proxy_echo_handler)
    in_listen = "unix:%s/in.sock" % tmpdir_short
    lk = link(backend=app, in_listen=in_listen, in_extra=("--proxy-protocol", version))
    assert harness.roundtrip(lk.out_addr, b"unix\n") == b"unix\n"
    h = app.wait_results(1)[0]
    if version == "v1":
        assert h["line"] == "PROXY UNKNOWN\r\n"
    else:
        # PROXY command with AF_UNSPEC: no addresses, the TLVs still there
        assert h["ver_cmd"] == 0x21 and h["fam"] == 0x00 and "src" not in h, h
        assert dict(h["tlvs"])[0xE0] == lk.a.id.encode()
    assert h["data"] == b"unix\n"


# --------------------------------------------------------------------------
# HTTP identity

SPOOF = "ffffffffffffffffffffffffffffffff"


def test_http_identity_across_keep_alive_requests(link, server):
    app = server(http_echo_handler)
    lk = link(backend=app, in_extra=("--http-identity",))
    s = connect(lk.out_addr)
    f = s.makefile("rb")
    spoofs = ["X-Peer-Id: %s" % SPOOF, "x-peer-id: %s" % SPOOF, "X_Peer_Id: %s" % SPOOF,
              "X-Forwarded-Client-Cert: Hash=%s" % SPOOF, "X-Forwarded-Proto: http"]
    for i, spoof in enumerate(spoofs):
        s.sendall(("POST /%d HTTP/1.1\r\nHost: app\r\n%s\r\nContent-Length: 3\r\n\r\nabc"
                   % (i, spoof)).encode())
        status, body = read_response(f)
        assert status == "HTTP/1.1 200 OK"
        text = body.decode("latin-1")
        assert SPOOF not in text and "X-Forwarded-Proto: http\n" not in text, text
        assert text.count("X-Peer-Id: %s\n" % lk.a.id) == 1, text
        assert "X-Forwarded-Proto: https\n" in text and "X-Forwarded-For: 127.0.0.1\n" in text
        assert text.count("X-Forwarded-Client-Cert: Hash=") == 1
        assert text.endswith("abc")
    # pipelined, with a chunked body in the middle
    s.sendall(b"GET /p1 HTTP/1.1\r\nX-Peer-Id: " + SPOOF.encode() + b"\r\n\r\n"
              b"POST /p2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
              b"GET /p3 HTTP/1.1\r\n\r\n")
    for _ in range(3):
        status, body = read_response(f)
        assert status == "HTTP/1.1 200 OK" and SPOOF.encode() not in body
    f.close()
    s.close()
    heads = app.wait_results(1)[0]
    assert [h[0].split()[1] for h in heads] == ["/0", "/1", "/2", "/3", "/4", "/p1", "/p2", "/p3"]
    for h in heads:
        assert sum(1 for l in h if l.lower().startswith("x-peer-id:")) == 1, h
        assert ("X-Peer-Id: %s" % lk.a.id) in h


def test_xfcc_names_the_leaf(link, server, pki):
    app = server(http_echo_handler)
    lk = link(backend=app, in_extra=("--http-identity",))
    s = connect(lk.out_addr)
    s.sendall(b"GET / HTTP/1.1\r\n\r\n")
    status, body = read_response(s.makefile("rb"))
    s.close()
    import hashlib
    digest = hashlib.sha256(leaf_der(lk.a.server_crt)).hexdigest()
    xfcc = [l for l in body.decode().split("\n") if l.startswith("X-Forwarded-Client-Cert: ")]
    assert xfcc == ['X-Forwarded-Client-Cert: Hash=%s;Subject="serialNumber=%s,OU=%s,'
                    'O=Swaptacular Nodes Registry"' % (digest, lk.a.id, lk.a.ou)], body


def test_smuggling_attempt_gets_400_and_close(link, server):
    app = server(http_echo_handler)
    lk = link(backend=app, in_extra=("--http-identity",))
    s = connect(lk.out_addr)
    f = s.makefile("rb")
    s.sendall(b"GET /fine HTTP/1.1\r\n\r\n")
    assert read_response(f)[0] == "HTTP/1.1 200 OK"
    s.sendall(b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n")
    status, _ = read_response(f)
    assert status == "HTTP/1.1 400 Bad Request"
    assert f.read() == b"", "the connection closes after the 400"
    f.close()
    s.close()
    heads = app.wait_results(1)[0]
    assert [h[0] for h in heads] == ["GET /fine HTTP/1.1"], "nothing after the bad request reached the app"
    rec = lk.inbound.wait_event("tunnel_closed", peer=lk.a.id)
    assert rec["reason"] == "bad_request" and rec["detail"], rec
    assert lk.inbound.events("http_refused", conn=rec["conn"])


def test_upgrade_switches_to_raw(link, server):
    def app_handler(conn, server):
        f = conn.makefile("rb")
        lines, _ = _read_request(f)
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
        return lines, _echo_until_eof(f.read1, conn)
    app = server(app_handler)
    lk = link(backend=app, in_extra=("--http-identity",))
    s = connect(lk.out_addr)
    after = b"X-Peer-Id: raw bytes are not HTTP\r\n\r\n"
    s.sendall(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n" + after)
    s.shutdown(socket.SHUT_WR)
    got = recv_all(s)
    s.close()
    assert got.startswith(b"HTTP/1.1 101") and got.endswith(after), got
    lines, raw = app.wait_results(1)[0]
    assert ("X-Peer-Id: %s" % lk.a.id) in lines
    assert raw == after


def test_proxy_v2_and_http_identity_together(link, server):
    def app_handler(conn, server):
        h = read_proxy_header(conn)
        return h, http_echo_handler(conn, server)
    app = server(app_handler)
    lk = link(backend=app, in_extra=("--proxy-protocol", "v2", "--http-identity"))
    s = connect(lk.out_addr)
    s.sendall(b"GET / HTTP/1.1\r\nX-Peer-Id: x\r\n\r\n")
    assert read_response(s.makefile("rb"))[0] == "HTTP/1.1 200 OK"
    s.close()
    h, heads = app.wait_results(1)[0]
    assert dict(h["tlvs"])[0xE0] == lk.a.id.encode()
    assert heads[0].count("X-Peer-Id: %s" % lk.a.id) == 1 and "X-Peer-Id: x" not in heads[0]


# --------------------------------------------------------------------------
# HAProxy as the app

def _wait_line(proc, text, timeout=harness.EVENT_TIMEOUT):
    deadline = time.monotonic() + timeout
    with proc.cond:
        while not any(text in l for l in proc.err_lines + proc.out_lines):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or proc.popen.poll() is not None:
                raise AssertionError("no %r from\n%s" % (text, proc.describe()))
            proc.cond.wait(remaining)


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_haproxy_reads_the_caller(link, procs, tmp_path, version):
    port = harness.free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(f"""global
    log stderr format raw local0
defaults
    mode http
    timeout client 10s
    timeout server 10s
    timeout connect 5s
frontend app
    bind 127.0.0.1:{port} accept-proxy
    http-request return status 200 content-type text/plain lf-string "peer=%[req.hdr(x-peer-id)] n=%[req.hdr_cnt(x-peer-id)] uid=%[fc_pp_unique_id] src=%ci:%cp\\n"
""")
    hap = harness.Proc(["haproxy", "-W", "-db", "-f", cfg], name="haproxy")
    procs.append(hap)
    _wait_line(hap, "Loading success")
    lk = link(in_target="127.0.0.1:%d" % port,
              in_extra=("--proxy-protocol", version, "--http-identity"))
    s = connect(lk.out_addr)
    f = s.makefile("rb")
    bodies = []
    for i in range(3):
        s.sendall(b"GET /%d HTTP/1.1\r\nHost: app\r\nX-Peer-Id: %s\r\n\r\n" % (i, SPOOF.encode()))
        status, body = read_response(f)
        assert status == "HTTP/1.1 200 OK", (status, body)
        bodies.append(body.decode())
    f.close()
    s.close()
    rec = lk.inbound.wait_event("tunnel_closed", peer=lk.a.id)
    uid = rec["conn"] if version == "v2" else ""
    want = "peer=%s n=1 uid=%s src=%s\n" % (lk.a.id, uid, rec["remote"])
    assert bodies == [want] * 3, (bodies, want)


# --------------------------------------------------------------------------
# configuration

def test_flags_are_checked(pki):
    n = pki[1]
    base = ["inbound", "--listen", "127.0.0.1:1", "--target", "127.0.0.1:2",
            "--ca", n.root_ca, "--cert", n.server_crt, "--key", n.server_key]
    rc, out, err = run_cli(base + ["--proxy-protocol", "v3"])
    assert rc == 2 and '--proxy-protocol: "v3" is not v1, v2 or off' in err, err
    rc, out, err = run_cli(base + ["--proxy-protocol-cert"])
    assert rc == 2 and "--proxy-protocol-cert needs --proxy-protocol v2" in err, err
    rc, out, err = run_cli(["outbound", "--http-identity", "--listen", "127.0.0.1:1"])
    assert rc == 2 and "--http-identity is not a flag of outbound" in err, err
    rc, out, err = run_cli(["outbound", "--proxy-protocol", "v1", "--listen", "127.0.0.1:1"])
    assert rc == 2 and "--proxy-protocol is not a flag of outbound" in err, err


def test_yaml_keys_are_checked(pki, tmp_path):
    a, b = pki[0], pki[1]
    text = f"""inbound:
  - name: in
    listen: 127.0.0.1:{harness.free_port()}
    target: 127.0.0.1:1
    ca: {b.root_ca}
    cert: {b.server_crt}
    key: {b.server_key}
    proxy_protocol: v9
    http_identity: maybe
  - name: in2
    listen: 127.0.0.1:{harness.free_port()}
    target: 127.0.0.1:1
    ca: {b.root_ca}
    cert: {b.server_crt}
    key: {b.server_key}
    proxy_protocol: v1
    proxy_protocol_cert: true
outbound:
  - name: out
    listen: 127.0.0.1:{harness.free_port()}
    targets: [127.0.0.1:1]
    ca: {a.peer_dir(b) / "root-ca.crt"}
    cert: {a.server_crt}
    key: {a.server_key}
    http_identity: true
"""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    rc, out, err = run_cli(["check", "--config", path])
    assert rc == 2, (rc, out, err)
    assert 'inbound[0].proxy_protocol: "v9" is not off, v1 or v2' in err, err
    assert 'inbound[0].http_identity: "maybe" is not true or false' in err, err
    assert "inbound[1]: proxy_protocol_cert needs proxy_protocol: v2" in err, err
    assert "outbound[0].http_identity: applies to inbound tunnels only" in err, err


def test_yaml_both_mechanisms_run(pki, proxy, server, tmp_path):
    a, b = pki[0], pki[1]
    app = server(lambda conn, srv: (read_proxy_header(conn), http_echo_handler(conn, srv)))
    in_addr, out_addr = "127.0.0.1:%d" % harness.free_port(), "127.0.0.1:%d" % harness.free_port()
    path = tmp_path / "c.yaml"
    path.write_text(f"""inbound:
  - name: in
    listen: {in_addr}
    target: {app.target}
    ca: {b.root_ca}
    cert: {b.server_crt}
    key: {b.server_key}
    proxy_protocol: v2
    proxy_protocol_cert: true
    http_identity: true
outbound:
""" + harness.outbound_yaml("out", out_addr, a, b, in_addr))
    p = proxy("run", "--config", path)
    s = connect(out_addr)
    s.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert read_response(s.makefile("rb"))[0] == "HTTP/1.1 200 OK"
    s.close()
    h, heads = app.wait_results(1)[0]
    tlv = dict(h["tlvs"])
    assert tlv[0xE0] == a.id.encode() and tlv[0xE1] == leaf_der(a.server_crt)
    assert ("X-Peer-Id: %s" % a.id) in heads[0]
    p.wait_event("tunnel_closed", tunnel="in", peer=a.id)


def test_node_data_inbound_tells_the_app(pki, proxy, server, tmp_path):
    a, b = pki[0], pki[1]
    app = server(lambda conn, srv: (read_proxy_header(conn), http_echo_handler(conn, srv)))
    in_addr, out_addr = "127.0.0.1:%d" % harness.free_port(), "127.0.0.1:%d" % harness.free_port()
    path = tmp_path / "node.yaml"
    path.write_text(f"""workers: 1
nodedata:
  path: {b.dir}
  cert: {b.server_crt}
  key: {b.server_key}
  inbound:
    listen: {in_addr}
    target: {app.target}
    proxy_protocol: v1
    http_identity: true
""")
    node = proxy("run", "--config", path)
    proxy("outbound", "--listen", out_addr, "--target", in_addr, *pki.outbound_args(a, b))
    s = connect(out_addr)
    s.sendall(b"GET / HTTP/1.1\r\nX-Peer-Id: spoof\r\n\r\n")
    assert read_response(s.makefile("rb"))[0] == "HTTP/1.1 200 OK"
    s.close()
    h, heads = app.wait_results(1)[0]
    rec = node.wait_event("tunnel_closed", tunnel="nodedata", peer=a.id)
    assert h["line"] == "PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n" % (_port(rec["remote"]), _port(in_addr))
    assert ("X-Peer-Id: %s" % a.id) in heads[0] and "X-Peer-Id: spoof" not in heads[0]


def test_proxy_v2_on_a_resumed_session(link, server):
    app = server(proxy_echo_handler)
    lk = link(backend=app, in_extra=("--proxy-protocol", "v2", "--workers", "1"),
              out_extra=("--workers", "1"))
    for i in range(2):
        # no half-close before the reply: a session ticket arriving after
        # the client's close_notify is dropped (see test_session_resumption)
        s = connect(lk.out_addr)
        s.sendall(b"call %d\n" % i)
        assert harness.recv_line(s) == b"call %d\n" % i
        s.close()
        lk.inbound.wait_events("tunnel_closed", i + 1)
    recs = lk.inbound.wait_events("tunnel_closed", 2, peer=lk.a.id)
    assert [r["resumed"] for r in recs] == ["no", "yes"], recs
    flags = [dict(h["tlvs"])[0x20][0] for h in app.wait_results(2)]
    assert sorted(flags) == [0x05, 0x07], "CERT_CONN only on the full handshake: %r" % flags
    assert all(dict(h["tlvs"])[0xE0] == lk.a.id.encode() for h in app.results)


def test_refused_http_to_an_app_that_never_closes(link, server):
    """The app ignores the end of the stream: after a grace period (10 s,
    or the idle timeout if shorter) the tunnel is cut anyway."""
    def app_handler(conn, server):
        conn.recv(65536)
        server.keep.add(conn)  # never answers, never closes
        return "held"
    app = server(app_handler)
    lk = link(backend=app, in_extra=("--http-identity", "--idle-timeout", "1s"))
    s = connect(lk.out_addr)
    t0 = time.monotonic()
    s.sendall(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    rec = lk.inbound.wait_event("tunnel_closed", peer=lk.a.id, timeout=9)
    assert time.monotonic() - t0 < 9, "cut at the idle timeout, before the 10 s grace"
    assert rec["reason"] == "bad_request" and rec["detail"] == "more than one Host", rec
    try:
        got = recv_all(s)
    except ConnectionResetError:
        got = b""
    assert got == b"", "cut without a 400: the app's answer never came"
    s.close()


@pytest.mark.slow
def test_a_stalled_app_stops_reads_with_http_identity(link, server):
    """Rewriting keeps backpressure: a 200 MiB body into an app that stopped
    reading blocks the writer, and the inbound proxy's memory stays flat."""
    from test_resources import RSS_BUDGET_KIB, RssSampler
    stalled = threading.Event()

    def app_handler(conn, srv):
        read_proxy_header(conn)
        conn.makefile("rb").readline()  # the request line, then nothing
        stalled.set()
        srv.keep.add(conn)
        return "stalled"
    app = server(app_handler)
    lk = link(backend=app, in_extra=("--proxy-protocol", "v2", "--http-identity"))
    assert lk.inbound.rss_kib() > 0
    baseline = lk.inbound.rss_kib()
    sampler = RssSampler([lk.inbound])
    sampler.start()
    total = 200 << 20
    block = memoryview(b"x" * (1 << 20))
    s = connect(lk.out_addr)
    s.sendall(b"POST /upload HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % total)
    assert stalled.wait(10)
    try:
        sent, blocked_for = harness.send_until_blocked(s, total, block)
    finally:
        sampler.stop()
        s.close()
    assert blocked_for >= 1.5 and sent < 128 << 20, "sent %d bytes into a stalled app" % sent
    growth = sampler.peak[lk.inbound.pid] - baseline
    assert growth < RSS_BUDGET_KIB, "inbound grew by %d KiB" % growth
