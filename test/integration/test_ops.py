"""Operations: the admin endpoint (probes, metrics, status, reload, quit),
hot reload on file changes (Kubernetes symlink swaps included), graceful
drain and the log flood limit."""

import hashlib
import os
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

import harness
from harness import admin_json, admin_request, metric, roundtrip, scrape


def _addr():
    return "127.0.0.1:%d" % harness.free_port()


def _write(path, text):
    path.write_text(text)
    return path


def _inbound_yaml(name, listen, target, ca, cert, key, extra=""):
    return f"""  - name: {name}
    listen: {listen}
    target: {target}
    ca: {ca}
    cert: {cert}
    key: {key}
{extra}"""


_outbound_yaml = harness.outbound_yaml


def _reissue(node, out_dir, serial):
    """A new key and server certificate for NODE (same subject and
    extensions, new serial), signed by its root: (cert path, key path)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    key, csr, crt = out_dir / "server.key", out_dir / "csr.pem", out_dir / "server.crt"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
                    "-out", str(key)], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-x509toreq", "-in", str(node.server_crt),
                    "-signkey", str(key), "-copy_extensions", "copy", "-out", str(csr)],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(node.root_ca),
                    "-CAkey", str(node.root_key), "-copy_extensions", "copyall",
                    "-set_serial", str(serial), "-days", "30", "-out", str(crt)],
                   check=True, capture_output=True)
    return crt, key


def _der(path):
    """DER of the first certificate in PATH (text before it is skipped)."""
    text = path.read_text()
    start = text.index("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
    return ssl.PEM_cert_to_DER_cert(text[start:end])


def _served_leaf(pki, addr, client, server):
    """The leaf certificate SERVER's inbound at ADDR presents to CLIENT."""
    ctx = harness.client_context(pki.client_chain_file(client, server),
                                 client.server_key,
                                 cafile=client.peer_dir(server) / "root-ca.crt")
    family, sa = harness.parse_addr(addr)
    raw = socket.create_connection(sa, timeout=harness.IO_TIMEOUT)
    with ctx.wrap_socket(raw) as tls:
        return tls.getpeercert(binary_form=True)


class PacedStream:
    """One connection through ADDR: sends FIRST bytes, waits for resume(),
    sends the rest, half-closes; a reader hashes everything echoed back."""

    def __init__(self, addr, first, rest):
        self.sock = harness.connect(addr, timeout=60)
        self.sent = hashlib.sha256()
        self.got = hashlib.sha256()
        self.received = 0
        self.go = threading.Event()
        self.first_sent = threading.Event()
        self.error = []
        self.threads = [threading.Thread(target=self._send, args=(first, rest), daemon=True),
                        threading.Thread(target=self._recv, daemon=True)]
        for t in self.threads:
            t.start()

    def _send(self, first, rest):
        try:
            block = os.urandom(1 << 20)
            for i, size in enumerate((first, rest)):
                if i == 1:
                    self.go.wait(60)
                left = size
                while left > 0:
                    piece = block[:min(left, len(block))]
                    self.sent.update(piece)
                    self.sock.sendall(piece)
                    left -= len(piece)
                self.first_sent.set()
            self.sock.shutdown(socket.SHUT_WR)
        except Exception as e:  # reported by finish()
            self.error.append(e)

    def _recv(self):
        try:
            while True:
                data = self.sock.recv(1 << 20)
                if not data:
                    break
                self.got.update(data)
                self.received += len(data)
        except Exception as e:
            self.error.append(e)

    def finish(self):
        self.go.set()
        for t in self.threads:
            t.join(90)
        self.sock.close()
        assert not self.error, self.error
        return self.sent.hexdigest(), self.got.hexdigest(), self.received


# ---- the endpoint itself ----------------------------------------------------


def test_probes_status_and_routing(pki, proxy, echo):
    n0 = pki[0]
    listen = _addr()
    p = proxy("inbound", "--listen", listen, "--target", echo.target, *pki.inbound_args(n0))
    assert p.wait_event("admin_listening")["addr"] == p.admin
    status, headers, body = admin_request(p.admin, "GET", "/healthz")
    assert (status, body) == (200, b"ok\n")
    assert headers["connection"] == "close"
    assert admin_json(p.admin, "GET", "/readyz") == (200, {"ready": True})
    status, doc = admin_json(p.admin, "GET", "/status")
    assert status == 200
    assert doc["draining"] is False and doc["uptime_seconds"] >= 0
    (t,) = doc["tunnels"]
    assert (t["name"], t["kind"], t["listen"]) == ("inbound", "inbound", listen)
    assert t["targets"] == [echo.target]
    roles = {c["certificate"]: c for c in t["certificates"]}
    assert roles["cert"]["id"] == n0.id
    assert "serialNumber=%s" % n0.id in roles["cert"]["subject"]
    assert roles["ca"]["id"] == n0.id
    # not_after matches the file
    info = ssl._ssl._test_decode_cert(str(n0.server_crt))
    want = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                         time.gmtime(ssl.cert_time_to_seconds(info["notAfter"])))
    assert roles["cert"]["not_after"] == want
    # HEAD: headers, no body
    status, headers, body = admin_request(p.admin, "HEAD", "/healthz")
    assert status == 200 and body == b"" and headers["content-length"] == "3"
    # the query string is ignored
    assert admin_request(p.admin, "GET", "/healthz?verbose=1")[0] == 200
    assert admin_request(p.admin, "GET", "/nope")[0] == 404
    status, headers, _ = admin_request(p.admin, "POST", "/metrics")
    assert status == 405 and headers["allow"] == "GET"
    status, headers, _ = admin_request(p.admin, "GET", "/reload")
    assert status == 405 and headers["allow"] == "POST"


def _raw_exchange(addr, data, timeout=10):
    s = harness.connect(addr, timeout)
    try:
        s.sendall(data)
        return harness.recv_all(s)
    except ConnectionResetError:
        return b""
    finally:
        s.close()


def test_bad_requests_get_400_431_413_and_close(pki, proxy, echo):
    p = proxy("inbound", "--listen", _addr(), "--target", echo.target, *pki.inbound_args(pki[0]))
    reply = _raw_exchange(p.admin, b"GARBAGE\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 "), reply
    assert b"malformed request" in reply
    reply = _raw_exchange(p.admin, b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:80]
    reply = _raw_exchange(p.admin, b"POST /reload HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"
                          + b"x" * 8000)
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:80]
    reply = _raw_exchange(p.admin, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:80]
    # a request that never completes is answered 408 and closed
    s = harness.connect(p.admin, timeout=20)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        reply = harness.recv_all(s)
    finally:
        s.close()
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert time.monotonic() - started < 15
    # and the endpoint still serves
    assert admin_request(p.admin, "GET", "/healthz")[0] == 200


def test_slow_client_flood_does_not_lock_out_probes_or_tunnels(link):
    lk = link()
    admin = lk.inbound.admin
    slow = []
    try:
        for _ in range(300):  # far more than the endpoint keeps open
            s = harness.connect(admin)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
            slow.append(s)
        # probes still answer while the flood is open
        for _ in range(5):
            assert admin_request(admin, "GET", "/healthz")[0] == 200
        sent, got, n, _ = harness.streaming_exchange(lk.out_addr, 32 << 20)
        assert (sent, n) == (got, 32 << 20)
    finally:
        for s in slow:
            s.close()
    assert admin_request(admin, "GET", "/readyz")[0] == 200


# ---- metrics ----------------------------------------------------------------


def test_metrics_move_with_traffic_refusals_and_reloads(pki, proxy, echo, tmp_path):
    n0, n1, n2 = pki[0], pki[1], pki[2]
    in_addr, out0, out2 = _addr(), _addr(), _addr()
    allow = f"    allow_peers: [{n0.id}]\n"
    text = ("inbound:\n"
            + _inbound_yaml("stomp", in_addr, echo.target, n1.root_ca, n1.server_crt,
                            n1.server_key, allow)
            + "outbound:\n"
            + _outbound_yaml("to-n1", out0, n0, n1, in_addr)
            + _outbound_yaml("n2-to-n1", out2, n2, n1, in_addr))
    cfg = _write(tmp_path / "pp.yaml", text)
    p = proxy("run", "--config", cfg)
    before = scrape(p.admin)
    assert metric(before, "peerproxy_connections_total", tunnel="stomp", result="established") == 0
    payloads = [b"a" * 1000, b"b" * 20000, b"c" * 5]
    for data in payloads:
        assert roundtrip(out0, data) == data
    assert harness.call_expecting_refusal(out2, b"let me in\n") == b""
    p.wait_events("tunnel_closed", 3, tunnel="stomp")
    p.wait_event("handshake_refused", tunnel="stomp", reason="peer_not_allowed")
    total = sum(len(d) for d in payloads)
    m = scrape(p.admin)
    assert metric(m, "peerproxy_connections_total", tunnel="stomp", result="established") == 3
    assert metric(m, "peerproxy_connections_total", tunnel="stomp", result="refused") == 1
    assert metric(m, "peerproxy_handshake_failures_total", tunnel="stomp",
                  reason="peer_not_allowed") == 1
    assert metric(m, "peerproxy_connections_total", tunnel="to-n1", result="established") == 3
    assert metric(m, "peerproxy_bytes_total", tunnel="stomp", direction="up") == total
    assert metric(m, "peerproxy_bytes_total", tunnel="stomp", direction="down") == total
    assert metric(m, "peerproxy_bytes_total", tunnel="to-n1", direction="up") == total
    # the refused caller's connection lingers a moment (it must read our
    # alert) and counts as open until it is gone
    deadline = time.monotonic() + 10
    while metric(m, "peerproxy_active_connections", tunnel="stomp") != 0:
        assert time.monotonic() < deadline, "connections stay open"
        time.sleep(0.1)  # polling a gauge: there is no event to wait for
        m = scrape(p.admin)
    # the histogram: cumulative buckets ending in +Inf == count == handshakes
    h = "peerproxy_handshake_duration_seconds"
    assert metric(m, h + "_count", tunnel="stomp") == 3
    assert metric(m, h + "_bucket", tunnel="stomp", le="+Inf") == 3
    assert metric(m, h + "_bucket", tunnel="stomp", le="0.001") <= \
        metric(m, h + "_bucket", tunnel="stomp", le="10")
    assert metric(m, h + "_sum", tunnel="stomp") > 0
    # certificate expiry matches the file
    info = ssl._ssl._test_decode_cert(str(n1.server_crt))
    assert metric(m, "peerproxy_certificate_expiry_timestamp_seconds", tunnel="stomp",
                  certificate="cert") == ssl.cert_time_to_seconds(info["notAfter"])
    assert metric(m, "peerproxy_certificate_expiry_timestamp_seconds", tunnel="to-n1",
                  certificate="chain") > 0
    # an open tunnel is counted as active, and per peer in /status
    s = harness.connect(out0)
    try:
        s.sendall(b"hold\n")
        assert harness.recv_line(s) == b"hold\n"
        m = scrape(p.admin)
        assert metric(m, "peerproxy_active_connections", tunnel="stomp") == 1
        # the process families: the tunnel's four sockets are among the
        # descriptors counted (the admin connection may come and go)
        fds = len(os.listdir("/proc/%d/fd" % p.pid))
        assert abs(metric(m, "process_open_fds") - fds) <= 2, (fds, m)
        assert metric(m, "process_resident_memory_bytes") > 2 ** 20
        assert metric(m, "process_cpu_seconds_total") > 0
        _, doc = admin_json(p.admin, "GET", "/status")
        stomp = next(t for t in doc["tunnels"] if t["name"] == "stomp")
        assert stomp["open_connections"] == 1
        assert stomp["open_by_peer"] == {n0.id: 1}
    finally:
        s.close()
    # reloads: a good one by signal; a broken file, seen by the file watch
    # and then asked for by the endpoint; the file fixed
    mark = p.mark()
    p.send_signal(signal.SIGHUP)
    p.wait_event("reloaded", since=mark, trigger="SIGHUP")
    mark = p.mark()
    cfg.write_text(text + "bogus_key: 1\n")
    p.wait_event("reload_failed", since=mark, trigger="file_change")
    status, doc = admin_json(p.admin, "POST", "/reload")
    assert status == 500 and doc["result"] == "failure", doc
    assert "bogus_key" in doc["error"], doc
    m = scrape(p.admin)
    assert metric(m, "peerproxy_reloads_total", result="success") == 1
    assert metric(m, "peerproxy_reloads_total", result="failure") == 2
    _, doc = admin_json(p.admin, "GET", "/status")
    assert "bogus_key" in doc["reloads"]["last_error"]
    assert roundtrip(out0, b"still serving\n") == b"still serving\n"
    mark = p.mark()
    cfg.write_text(text)
    p.wait_event("reloaded", since=mark, trigger="file_change")
    status, doc = admin_json(p.admin, "POST", "/reload")
    assert (status, doc["result"]) == (200, "success"), doc
    m = scrape(p.admin)
    assert metric(m, "peerproxy_reloads_total", result="success") == 3
    # counters survive reloads
    assert metric(m, "peerproxy_connections_total", tunnel="stomp", result="established") == 5


def test_metrics_count_limits_and_upstream_errors(pki, proxy, tmp_path):
    n0, n1 = pki[0], pki[1]
    dead = _addr()  # reserved, nothing listens
    in_addr, out0 = _addr(), _addr()
    text = ("inbound:\n"
            + _inbound_yaml("stomp", in_addr, dead, n1.root_ca, n1.server_crt, n1.server_key)
            + "outbound:\n"
            + _outbound_yaml("to-n1", out0, n0, n1, in_addr)
            + _outbound_yaml("nowhere", _addr(), n0, n1, dead))
    p = proxy("run", "--config", _write(tmp_path / "pp.yaml", text))
    nowhere = p.wait_event("listening", tunnel="nowhere")["addr"]
    assert harness.call_expecting_refusal(nowhere, b"x") == b""
    assert harness.call_expecting_refusal(out0, b"y") == b""
    p.wait_event("tunnel_closed", tunnel="nowhere")
    p.wait_event("tunnel_closed", tunnel="stomp")
    m = scrape(p.admin)
    assert metric(m, "peerproxy_connections_total", tunnel="nowhere", result="upstream_error") == 1
    # the inbound verified its caller: established, then its app was down
    assert metric(m, "peerproxy_connections_total", tunnel="stomp", result="established") == 1


# ---- reload on file changes -------------------------------------------------


def _k8s_volume(vol, files, stamp):
    """Write FILES ({name: bytes}) into VOL as a Kubernetes secret volume
    does: a new timestamped directory, then an atomic swap of the ..data
    symlink; the visible names are symlinks through ..data."""
    vol.mkdir(exist_ok=True)
    d = vol / ("..2026_11_30_" + stamp)
    d.mkdir()
    for name, data in files.items():
        (d / name).write_bytes(data)
    tmp = vol / "..data_tmp"
    os.symlink(d.name, tmp)
    os.replace(tmp, vol / "..data")
    for name in files:
        link = vol / name
        if not link.is_symlink():
            os.symlink("..data/" + name, link)


def test_rotation_k8s_style_during_100mib_transfer(pki, proxy, echo, tmp_path):
    """node1's inbound cert and key live in a Kubernetes-style secret volume.
    Mid-transfer, a new certificate is swapped in through ..data: it is
    picked up without a signal, new connections see it, and the transfer
    in flight completes intact."""
    n0, n1 = pki[0], pki[1]
    vol = tmp_path / "secret"
    _k8s_volume(vol, {"tls.crt": n1.server_crt.read_bytes(),
                      "tls.key": n1.server_key.read_bytes()}, "a")
    in_addr = _addr()
    text = "inbound:\n" + _inbound_yaml("stomp", in_addr, echo.target, n1.root_ca,
                                        vol / "tls.crt", vol / "tls.key")
    inbound = proxy("run", "--config", _write(tmp_path / "pp.yaml", text))
    out = _addr()
    proxy("outbound", "--listen", out, "--target", in_addr, *pki.outbound_args(n0, n1),
          "--session-resumption", "off")
    assert _served_leaf(pki, in_addr, n0, n1) == _der(n1.server_crt)

    stream = PacedStream(out, 50 << 20, 50 << 20)
    assert stream.first_sent.wait(60)
    new_crt, new_key = _reissue(n1, tmp_path / "new", serial=4242)
    mark = inbound.mark()
    _k8s_volume(vol, {"tls.crt": new_crt.read_bytes(), "tls.key": new_key.read_bytes()}, "b")
    rec = inbound.wait_event("reloaded", since=mark)
    assert rec["trigger"] == "file_change", rec
    assert rec["new_certificates"] == "stomp", rec
    assert _served_leaf(pki, in_addr, n0, n1) == _der(new_crt)
    assert roundtrip(out, b"after rotation\n") == b"after rotation\n"
    sent, got, n = stream.finish()
    assert (sent, n) == (got, 100 << 20)
    inbound.wait_event("tunnel_closed", tunnel="stomp", bytes_up=100 << 20,
                       bytes_down=100 << 20, reason="done")
    _, doc = admin_json(inbound.admin, "GET", "/status")
    assert doc["reloads"]["success"] >= 1


def test_editor_style_rename_and_broken_key_refused(pki, proxy, echo, tmp_path):
    """A key replaced by rename with garbage: the reload is refused, the old
    certificate keeps serving; a good key by rename afterwards applies."""
    n0, n1 = pki[0], pki[1]
    d = tmp_path / "certs"
    d.mkdir()
    crt, key = d / "server.crt", d / "server.key"
    crt.write_bytes(n1.server_crt.read_bytes())
    key.write_bytes(n1.server_key.read_bytes())
    in_addr = _addr()
    text = "inbound:\n" + _inbound_yaml("stomp", in_addr, echo.target, n1.root_ca, crt, key)
    inbound = proxy("run", "--config", _write(tmp_path / "pp.yaml", text))
    mark = inbound.mark()
    tmp = d / ".server.key.swp"
    tmp.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    os.replace(tmp, key)
    rec = inbound.wait_event("reload_failed", since=mark)
    assert rec["trigger"] == "file_change", rec
    assert "server.key" in rec["error"], rec
    assert _served_leaf(pki, in_addr, n0, n1) == _der(n1.server_crt)
    status, body = admin_json(inbound.admin, "GET", "/readyz")
    assert status == 200, body
    m = scrape(inbound.admin)
    assert metric(m, "peerproxy_reloads_total", result="failure") == 1
    # a matching pair, written as editors do
    new_crt, new_key = _reissue(n1, tmp_path / "new", serial=777)
    mark = inbound.mark()
    for src, dst in ((new_crt, crt), (new_key, key)):  # within one debounce
        tmp = d / (".tmp-" + dst.name)
        tmp.write_bytes(src.read_bytes())
        os.replace(tmp, dst)
    inbound.wait_event("reloaded", since=mark, trigger="file_change")
    assert _served_leaf(pki, in_addr, n0, n1) == _der(new_crt)


def test_unchanged_files_touched_do_not_reload(pki, proxy, echo, tmp_path):
    n1 = pki[1]
    cfg = _write(tmp_path / "pp.yaml", "inbound:\n" + _inbound_yaml(
        "stomp", _addr(), echo.target, n1.root_ca, n1.server_crt, n1.server_key))
    p = proxy("run", "--config", cfg)
    (tmp_path / "unrelated.txt").write_text("noise\n")  # same directory
    mark = p.mark()
    # a real change afterwards is the readiness signal that events were seen
    cfg.write_text(cfg.read_text() + "log: {level: info}\n")
    p.wait_event("reloaded", since=mark, trigger="file_change")
    assert len(p.events("reloaded")) == 1, p.describe()


def test_reload_names_every_tunnel_with_a_new_certificate(pki, proxy, echo, tmp_path):
    """30 tunnels serve one certificate (as node data's peer tunnels share
    the node's); it is replaced: the reloaded line names all 30.  The list
    was built in 512 bytes: it stopped inside the 19th name."""
    n1 = pki[1]
    names = ["inbound-%02d-with-a-long-name" % i for i in range(30)]

    def config(crt, key):
        return "inbound:\n" + "".join(
            _inbound_yaml(n, addrs[n], echo.target, n1.root_ca, crt, key) for n in names)

    addrs = {n: _addr() for n in names}
    new_crt, new_key = _reissue(n1, tmp_path / "new", serial=4343)
    cfg = _write(tmp_path / "pp.yaml", config(n1.server_crt, n1.server_key))
    p = proxy("run", "--config", cfg)
    mark = p.mark()
    _write(tmp_path / "next.yaml", config(new_crt, new_key))
    os.replace(tmp_path / "next.yaml", cfg)  # one change, seen whole
    rec = p.wait_for(lambda r: r.get("event") == "reloaded" and "new_certificates" in r,
                     since=mark, what="a reload with new certificates")
    assert rec["new_certificates"].split(",") == names, rec


def test_reload_error_is_kept_whole(pki, proxy, echo, tmp_path):
    """A reload refused for a missing certificate with a 600-byte path:
    /reload and /status give the whole error, the path and the reason
    (it was kept in 512 bytes: the reason was cut off)."""
    n1 = pki[1]
    cfg = _write(tmp_path / "pp.yaml", "inbound:\n" + _inbound_yaml(
        "stomp", _addr(), echo.target, n1.root_ca, n1.server_crt, n1.server_key))
    p = proxy("run", "--config", cfg)
    missing = "/nonexistent/" + "d" * 600 + "/server.crt"
    cfg.write_text(cfg.read_text().replace(str(n1.server_crt), missing))
    p.wait_event("reload_failed", trigger="file_change")
    for doc in (admin_json(p.admin, "POST", "/reload")[1]["error"],
                admin_json(p.admin, "GET", "/status")[1]["reloads"]["last_error"]):
        assert missing in doc and doc.endswith("No such file or directory"), doc


# ---- drain ------------------------------------------------------------------


def test_quitquitquit_drains_in_flight_and_refuses_new(link):
    lk = link()
    s = harness.connect(lk.out_addr)
    try:
        s.sendall(b"before\n")
        assert harness.recv_line(s) == b"before\n"
        status, doc = admin_json(lk.inbound.admin, "POST", "/quitquitquit")
        assert (status, doc["result"]) == (200, "draining"), doc
        assert doc["open_tunnels"] == 1
        lk.inbound.wait_event("draining", signal="quitquitquit")
        status, doc = admin_json(lk.inbound.admin, "GET", "/readyz")
        assert (status, doc["reason"]) == (503, "draining")
        # new callers are refused once the workers have closed their
        # listeners, which each does on its own loop when told to, just
        # after the draining line: a caller the kernel queued before that
        # is let go, and the next one tried
        deadline = time.monotonic() + 10
        while True:
            try:
                harness.connect(lk.in_addr, timeout=5).close()
            except OSError:
                break
            assert time.monotonic() < deadline, "still accepting 10 s into the drain"
        # the tunnel in flight carries on
        s.sendall(b"x" * 100000)
        assert harness.recv_all(s, limit=100000) == b"x" * 100000
    finally:
        s.close()
    assert lk.inbound.wait_exit(30) == 0


# ---- logs -------------------------------------------------------------------


def test_flood_of_identical_errors_is_rate_limited(pki, proxy, echo):
    listen = _addr()
    p = proxy("inbound", "--listen", listen, "--target", echo.target, *pki.inbound_args(pki[0]))
    floods = 60
    for _ in range(floods):
        assert _raw_exchange(listen, b"GET / HTTP/1.0\r\n\r\n") is not None
    p.wait_event("log_suppressed", suppressed_event="handshake_refused")

    def totals():
        written = len(p.events("handshake_refused"))
        suppressed = sum(int(r["count"]) for r in p.events("log_suppressed"))
        return written, suppressed

    # written lines plus suppressed counts account for every refusal
    p.wait_for(lambda _: sum(totals()) >= floods, what="every refusal logged or counted")
    written, suppressed = totals()
    assert written + suppressed == floods, (written, suppressed)
    assert written < floods and suppressed > 0
    m = scrape(p.admin)
    refused = sum(v for (name, labels), v in m.items()
                  if name == "peerproxy_handshake_failures_total")
    assert refused == floods  # metrics count every one
