"""The compose topology (deploy/compose) without a container engine.

Each node is a Linux network namespace with its own address, holding an
unmodified app and peerproxy in node data mode, as a pod or a compose
service would.  The namespaces are linked by a veth pair:

    ns A: caller app -> unix socket -> peerproxy A (198.18.7.1) ==mTLS==+
                                                                         |  veth
    ns B: echo app on 127.0.0.1:8080 <- peerproxy B :1234 (198.18.7.2) <=+

The addresses are from 198.18.0.0/15 (set aside for benchmarking test
networks) and exist only inside the namespaces this test makes.

Needs root and iproute2; skips with the reason otherwise.
Run: PEERPROXY_BIN=build/peerproxy python3 -m pytest -q test/e2e
"""

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "test" / "integration"))
import harness  # noqa: E402

PKI_TOOL = str(REPO / "deploy" / "pki" / "peerproxy-pki")
APP = str(HERE / "netns_app.py")
DEMO_APP = str(REPO / "deploy" / "compose" / "demo-app.py")
ADDR = {"a": "198.18.7.1", "b": "198.18.7.2"}
PORT = 1234          # each node's inbound (the Swaptacular STOMP port)
APP_PORT = 8080      # B's app, on B's loopback only


def _run(*argv, check=True):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          check=check, timeout=60)


def _netns_unavailable():
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if not shutil.which("ip"):
        return "needs iproute2 (ip)"
    probe = "pp7probe%d" % os.getpid()
    r = _run("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        return "cannot create a network namespace here: " + r.stderr.strip()
    # Entering one needs more (ip remounts /sys and makes / a slave mount:
    # that fails where / is not a mount point, as in a plain chroot).
    r = _run("ip", "-n", probe, "link", "set", "lo", "up", check=False)
    _run("ip", "netns", "del", probe, check=False)
    if r.returncode != 0:
        return "cannot enter a network namespace here: " + r.stderr.strip()
    return None


_why = _netns_unavailable()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")


class Mesh:
    """Two namespaces, their PKI, configs and processes; torn down by close()."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        tag = "%d" % os.getpid()
        self.ns = {"a": "pp7a" + tag, "b": "pp7b" + tag}
        self.dev = {"a": "pp7va" + tag, "b": "pp7vb" + tag}
        self.procs = []

    # -- network ------------------------------------------------------------

    def up(self):
        for n in ("a", "b"):
            _run("ip", "netns", "add", self.ns[n])
            _run("ip", "-n", self.ns[n], "link", "set", "lo", "up")
        _run("ip", "link", "add", self.dev["a"], "netns", self.ns["a"], "type", "veth",
             "peer", "name", self.dev["b"], "netns", self.ns["b"])
        for n in ("a", "b"):
            _run("ip", "-n", self.ns[n], "addr", "add", ADDR[n] + "/24", "dev", self.dev[n])
            self.set_link(n, "up")

    def set_link(self, node, state):
        _run("ip", "-n", self.ns[node], "link", "set", self.dev[node], state)

    def link_is_up(self, node):
        out = _run("ip", "-n", self.ns[node], "-o", "link", "show", self.dev[node]).stdout
        return "LOWER_UP" in out and "state UP" in out

    def wait_link(self, node, timeout=10):
        """Until the kernel reports carrier on NODE's link (a state change
        the kernel makes, polled: there is no event to wait on here)."""
        deadline = time.monotonic() + timeout
        while not self.link_is_up(node):
            assert time.monotonic() < deadline, "link of %s did not come up" % node
            time.sleep(0.02)

    def close(self):
        for p in reversed(self.procs):
            p.stop()
        for n in ("a", "b"):
            _run("ip", "netns", "del", self.ns[n], check=False)

    # -- processes ------------------------------------------------------------

    def start(self, node, argv, name, stdin=subprocess.DEVNULL):
        p = harness.Proc(["ip", "netns", "exec", self.ns[node]] + [str(a) for a in argv],
                         name=name, stdin=stdin)
        self.procs.append(p)
        return p

    def exec(self, node, *argv):
        return _run("ip", "netns", "exec", self.ns[node], *argv)

    def start_proxy(self, node, config):
        p = self.start(node, [harness.PROXY_BIN, "run", "--config", config],
                       "peerproxy " + node)
        p.wait_event("ready", timeout=harness.READY_TIMEOUT)
        return p


def _config(mesh, node_dir, node):
    path = mesh.tmp / ("%s.yaml" % node)
    path.write_text(f"""\
workers: 1
limits: {{connect_timeout: 1s, handshake_timeout: 5s}}
nodedata:
  path: {node_dir}
  cert: {node_dir}/server.crt
  key: {node_dir}/server.key
  inbound: {{listen: 0.0.0.0:{PORT}, target: 127.0.0.1:{APP_PORT}}}
  outbound: {{socket_dir: {mesh.tmp}/{node}-peers}}
  rescan_interval: 60s
""")
    return str(path)


class Caller:
    """Node A's app: one request per call, through A's socket for B."""

    def __init__(self, proc, socket_path):
        self.proc, self.socket = proc, socket_path
        self.lock = threading.Lock()

    def call(self, message):
        with self.lock:
            with self.proc.cond:
                seen = len(self.proc.out_lines)
            self.proc.popen.stdin.write(("%s %s\n" % (self.socket, message)).encode())
            self.proc.popen.stdin.flush()
            deadline = time.monotonic() + 30
            with self.proc.cond:
                while len(self.proc.out_lines) <= seen:
                    left = deadline - time.monotonic()
                    assert left > 0 and self.proc.running(), self.proc.describe()
                    self.proc.cond.wait(left)
                return self.proc.out_lines[seen]


def _serial_of_pem(pem):
    r = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem,
                       capture_output=True, text=True, check=True)
    return r.stdout.strip().split("=")[1]


def _file_serial(path):
    return _run("openssl", "x509", "-in", path, "-noout", "-serial").stdout.strip().split("=")[1]


@pytest.fixture
def mesh():
    tmp = harness.short_tmpdir("pp7e2e")
    m = Mesh(tmp)
    try:
        m.up()
        _run(sys.executable, PKI_TOOL, "nodes", m.tmp / "pki", "--nodes", "2",
             "--servers", "%s:%d,%s:%d" % (ADDR["a"], PORT, ADDR["b"], PORT))
        m.dir = {"a": m.tmp / "pki" / "node0", "b": m.tmp / "pki" / "node1"}
        m.id = {n: (m.dir[n] / "db" / "nodeid").read_text().strip() for n in m.dir}
        # B's app is the compose demo's, serving on B's loopback only.
        app_b = m.start("b", [sys.executable, "-u", DEMO_APP, "--name", "app-b",
                              "--bind", "127.0.0.1", "--port", APP_PORT], "app b")
        app_b.wait_stdout(lambda l: "ready" in l)
        m.proxy = {n: m.start_proxy(n, _config(m, m.dir[n], n)) for n in ("b", "a")}
        app_a = m.start("a", [sys.executable, "-u", APP, "call"], "app a",
                        stdin=subprocess.PIPE)
        m.caller = Caller(app_a, "%s/a-peers/%s.sock" % (m.tmp, m.id["b"]))
        yield m
    finally:
        m.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_apps_talk_only_through_the_mesh(mesh):
    assert mesh.caller.call("hello") == "ok app-b got hello"
    rec = mesh.proxy["b"].wait_event("tunnel_closed", tunnel="nodedata")
    assert rec["peer"] == mesh.id["a"], rec
    assert rec["remote"].startswith(ADDR["a"] + ":"), rec
    # B's app is not reachable from A's namespace except through peerproxy,
    # and B's inbound refuses a plain client (no certificate, no TLS).
    out = mesh.exec("a", sys.executable, APP, "dial", ADDR["b"], APP_PORT).stdout
    assert out.startswith("refused"), out


def test_link_cut_and_restored_next_connection_recovers(mesh):
    p_a = mesh.proxy["a"]
    assert mesh.caller.call("before") == "ok app-b got before"

    mesh.set_link("b", "down")
    mark = p_a.mark()
    answer = mesh.caller.call("during")
    assert answer.startswith("fail"), answer
    rec = p_a.wait_event("tunnel_closed", since=mark, tunnel="peer-" + mesh.id["b"])
    assert rec["reason"] in ("connect_failed", "connect_timeout"), rec

    mesh.set_link("b", "up")
    mesh.wait_link("a")
    mesh.wait_link("b")
    # The very next connection goes through: nothing in A is stuck on the
    # outage (no cached failure, no restart).
    assert mesh.caller.call("after") == "ok app-b got after"
    assert p_a.running() and mesh.proxy["b"].running()


def test_certificate_rotation_while_calling(mesh):
    """B's server certificate is replaced (new key, new serial) while A's
    app calls without pause; B's file watch reloads without any signal:
    every call succeeds, and A's side then sees B's new certificate."""
    old_serial = _file_serial(mesh.dir["b"] / "server.crt")
    results, stop = [], threading.Event()

    def keep_calling():
        i = 0
        while not stop.is_set():
            results.append((i, mesh.caller.call("call-%d" % i)))
            i += 1

    t = threading.Thread(target=keep_calling, daemon=True)
    t.start()
    try:
        p_b = mesh.proxy["b"]
        mark = p_b.mark()
        p_b.wait_events("tunnel_closed", 3, since=mark, timeout=30)
        out = _run(sys.executable, PKI_TOOL, "server-cert", mesh.dir["b"]).stdout
        new_serial = _file_serial(mesh.dir["b"] / "server.crt")
        assert new_serial != old_serial and new_serial in out.replace(":", "")
        # (the tool renames the key and the certificate into place; a
        # reload that catches the first rename alone is refused and the
        # old pair keeps serving until the second)
        rec = p_b.wait_for(lambda r: r.get("event") == "reloaded" and "new_certificates" in r,
                           since=mark, timeout=15, what="a reload with B's new certificate")
        assert rec["trigger"] == "file_change", rec
        # A few more calls after the reload, through new tunnels.
        p_b.wait_events("tunnel_closed", 3, since=p_b.mark(), timeout=30)
    finally:
        stop.set()
        t.join(40)
    assert len(results) >= 6, results
    failures = [(i, r) for i, r in results if r != "ok app-b got call-%d" % i]
    assert not failures, failures

    # What B now presents, seen from A's namespace with A's credentials.
    a, b = mesh.dir["a"], mesh.dir["b"]
    chain = mesh.tmp / "a-chain.pem"
    chain.write_text(harness.pem_certs(a / "server.crt") +
                     harness.pem_certs(a / "peers" / mesh.id["b"] / "sub-ca.crt"))
    ca = mesh.tmp / "b-root.pem"
    ca.write_text(harness.pem_certs(a / "peers" / mesh.id["b"] / "root-ca.crt"))
    pem = mesh.exec("a", sys.executable, APP, "peek", ADDR["b"], PORT, chain,
                    a / "server.key", ca).stdout
    assert _serial_of_pem(pem) == new_serial
    # And A's trust decision for it, offline: B's new leaf is B.
    r = _run(harness.PROXY_BIN, "verify", "--ca", a / "peers" / mesh.id["b"] / "root-ca.crt",
             "--cert", b / "server.crt", "--peer", mesh.id["b"], check=False)
    assert r.returncode == 0 and ("peer id: " + mesh.id["b"]) in r.stdout, r.stdout + r.stderr
