"""Hostile files through the real binary (issue 13).

Each hostile file is refused by `check` and by `run` with exit 2 and an
error naming the file (and the line or the key where that helps), in
bounded time and memory; and a running proxy whose good file is replaced
by the hostile one logs reload_failed naming the file and keeps serving
its old configuration, shown by a round trip through the tunnel after the
failed reload and by /status and the metrics.

The time bound is a hang detector, not a performance assertion.  Memory is
bounded twice for the one-shot runs: the child runs under RLIMIT_AS (not
with ASan, which reserves terabytes of shadow) and its peak RSS, from
wait4, must stay under MEM_KIB.
"""

import concurrent.futures
import os
import resource
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import harness
from harness import NodesPKI, admin_json, metric, roundtrip, scrape

HANG = 20.0                      # seconds: a hang detector only
MEM_KIB = (1024 if harness.sanitized() else 256) * 1024
AS_LIMIT = 1 << 30               # RLIMIT_AS of the one-shot runs (release)


# --------------------------------------------------------------------------
# one-shot runs: check and run, bounded


def _child_limits(sanitized, nofile):
    def apply():
        harness._die_with_parent()
        if not sanitized:
            resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    return apply


def bounded(args, timeout=HANG, nofile=None):
    """Run `peerproxy ARGS` to its end; return (exit code, stdout and
    stderr, seconds).  It
    must end within TIMEOUT seconds (else it is killed and the test fails)
    and its peak RSS stay under MEM_KIB.  Output goes to files, not pipes,
    so a chatty child never blocks on a full pipe."""
    args = [str(a) for a in args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen([harness.PROXY_BIN] + args, stdin=subprocess.DEVNULL,
                             stdout=out, stderr=err,
                             preexec_fn=_child_limits(harness.sanitized(), nofile))
        killer = threading.Timer(timeout, p.kill)
        start = time.monotonic()
        killer.start()
        try:
            _, status, usage = os.wait4(p.pid, 0)
        finally:
            killer.cancel()
        took = time.monotonic() - start
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped here
        out.seek(0)
        err.seek(0)
        text = (out.read() + err.read()).decode("utf-8", "replace")
    assert p.returncode != -signal.SIGKILL, (
        "peerproxy %s did not end within %.0f s:\n%s" % (" ".join(args), timeout, text[-3000:]))
    assert usage.ru_maxrss < MEM_KIB, (
        "peerproxy %s peaked at %d KiB (bound %d KiB)" % (" ".join(args), usage.ru_maxrss, MEM_KIB))
    return p.returncode, text, took


def assert_refused(config, *needles, timeout=HANG):
    """`check` and `run` of CONFIG both exit 2 with every NEEDLE in one
    line of their error output.  Returns check's output."""
    outputs = []
    for cmd in ("check", "run"):
        args = [cmd, "--config", config]
        if cmd == "run":  # should it serve after all, not on a shared port
            args += ["--admin", "127.0.0.1:%d" % harness.free_port()]
        rc, err, _ = bounded(args, timeout)
        assert rc == 2, "%s: exit %s, wanted 2:\n%s" % (cmd, rc, err)
        lines = [line for line in err.splitlines() if all(n in line for n in needles)]
        assert lines, "%s: no line names all of %r:\n%s" % (cmd, needles, err)
        assert lines[0].startswith("peerproxy %s: " % cmd), lines[0]
        outputs.append(err)
    return outputs[0]


def _beside(path, what):
    """A fresh name next to PATH."""
    return path.parent / (".%s-%s-%s" % (what, secrets.token_hex(4), path.name))


def fifo_link(path):
    """Replace PATH by a symlink to a new FIFO nobody writes to."""
    fifo, link = _beside(path, "fifo"), _beside(path, "link")
    os.mkfifo(fifo)
    os.symlink(fifo, link)
    os.replace(link, path)


def zero_link(path):
    link = _beside(path, "zero")
    os.symlink("/dev/zero", link)
    os.replace(link, path)


def sparse(path, size):
    """Replace PATH by a file of SIZE bytes, all holes (nothing written)."""
    tmp = _beside(path, "big")
    with open(tmp, "wb") as f:
        f.truncate(size)
    os.replace(tmp, path)


def replace_text(path, text):
    tmp = _beside(path, "new")
    tmp.write_text(text)
    os.replace(tmp, path)


def make_dir(path):
    """Replace the file PATH by a directory (two calls, well within the
    watch's debounce)."""
    os.unlink(path)
    os.mkdir(path)


# --------------------------------------------------------------------------
# a plain configuration: node1's inbound and node0's outbound to it, in
# one process, every file a copy that a test may replace


class Plain:
    def __init__(self, pki, echo, d):
        n0, n1 = pki[0], pki[1]
        self.dir = d
        self.files = {
            "in-ca.crt": n1.root_ca, "in.crt": n1.server_crt, "in.key": n1.server_key,
            "out-ca.crt": n0.peer_dir(n1) / "root-ca.crt", "out.crt": n0.server_crt,
            "out-chain.crt": n0.peer_dir(n1) / "sub-ca.crt", "out.key": n0.server_key,
        }
        for name, src in self.files.items():
            shutil.copy(src, d / name)
        self.in_addr = "127.0.0.1:%d" % harness.free_port()
        self.out_addr = "127.0.0.1:%d" % harness.free_port()
        self.text = f"""workers: 1
inbound:
  - name: in
    listen: {self.in_addr}
    ca: in-ca.crt
    cert: in.crt
    key: in.key
    target: {echo.target}
outbound:
  - name: out
    listen: {self.out_addr}
    targets: [{self.in_addr}]
    ca: out-ca.crt
    cert: out.crt
    chain: out-chain.crt
    key: out.key
    peer: {n1.id}
"""
        self.config = d / "peerproxy.yaml"
        self.config.write_text(self.text)
        self.proc = None

    def path(self, name):
        return self.dir / name

    def hostile_config(self, name, text=None):
        """A copy of the configuration, or TEXT, as DIR/NAME."""
        p = self.dir / name
        p.write_text(self.text if text is None else text)
        return p

    def start(self, proxy):
        self.proc = proxy("run", "--config", self.config)
        assert roundtrip(self.out_addr, b"before\n") == b"before\n"
        return self.proc

    def assert_keeps_serving(self, failed_reloads):
        """The old configuration serves: a round trip through the tunnel,
        both tunnels in /status, the failure counted, memory bounded."""
        p = self.proc
        assert roundtrip(self.out_addr, b"still served\n") == b"still served\n"
        status, doc = admin_json(p.admin, "GET", "/status")
        assert status == 200, doc
        assert sorted(t["name"] for t in doc["tunnels"]) == ["in", "out"], doc["tunnels"]
        assert doc["reloads"]["failure"] >= failed_reloads, doc["reloads"]
        m = scrape(p.admin)
        assert metric(m, "peerproxy_reloads_total", result="failure") >= failed_reloads
        assert harness.rss_kib(p.pid) < MEM_KIB
        return doc


@pytest.fixture
def plain(pki, echo, tmp_path):
    return Plain(pki, echo, tmp_path)


def replaced_while_running(plain, proxy, name, make_hostile, *needles):
    """Start PLAIN, make its file NAME hostile with MAKE_HOSTILE(path): the
    file change is seen, the reload fails naming the file (and NEEDLES),
    and the old configuration keeps serving."""
    p = plain.start(proxy)
    mark = p.mark()
    path = plain.path(name)
    make_hostile(path)
    rec = p.wait_event("reload_failed", since=mark, timeout=HANG)
    assert rec["trigger"] == "file_change", rec
    assert str(path) in rec["error"], rec
    for n in needles:
        assert n in rec["error"], rec
    doc = plain.assert_keeps_serving(1)
    assert str(path) in doc["reloads"]["last_error"], doc["reloads"]
    return rec


# --------------------------------------------------------------------------
# the configuration file


LAUGHS = """lol: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
inbound: [*i, *i, *i, *i, *i, *i, *i, *i, *i, *i]
"""


def test_billion_laughs(plain, proxy):
    """Ten levels of ten aliases: 10^10 values if walked.  Refused at the
    first alias, naming its line."""
    bad = plain.hostile_config("laughs.yaml", plain.text + LAUGHS)
    line = plain.text.count("\n") + 2
    assert_refused(bad, "laughs.yaml:%d:8:" % line, "YAML alias *a: aliases are not supported")
    replaced_while_running(plain, proxy, "peerproxy.yaml",
                           lambda p: replace_text(p, plain.text + LAUGHS),
                           "peerproxy.yaml:%d:8:" % line, "aliases are not supported")


def test_100k_deep_nesting(plain, proxy):
    deep = "x: " + "[" * 100000 + "]" * 100000 + "\n"
    bad = plain.hostile_config("deep.yaml", deep)
    # the root mapping is level 1: the 64th bracket (column 67) is the 65th
    assert_refused(bad, "deep.yaml:1:67:", "nested more than 64 levels deep")
    replaced_while_running(plain, proxy, "peerproxy.yaml",
                           lambda p: replace_text(p, deep),
                           "peerproxy.yaml:1:67:", "nested more than 64 levels deep")


def test_200mb_config(plain, proxy):
    bad = plain.dir / "big.yaml"
    sparse(bad, 200 * 1000 * 1000)
    assert_refused(bad, str(bad), "larger than the 1 MiB limit")
    replaced_while_running(plain, proxy, "peerproxy.yaml",
                           lambda p: sparse(p, 200 * 1000 * 1000),
                           "larger than the 1 MiB limit")


def test_config_is_a_fifo_or_dev_zero(plain, proxy):
    bad = plain.dir / "fifo.yaml"
    bad.write_text("")
    fifo_link(bad)
    assert_refused(bad, str(bad), "is a FIFO, not a regular file")
    zero = plain.dir / "zero.yaml"
    zero.write_text("")
    zero_link(zero)
    assert_refused(zero, str(zero), "is a character device, not a regular file")
    replaced_while_running(plain, proxy, "peerproxy.yaml", fifo_link, "is a FIFO")


# --------------------------------------------------------------------------
# certificates and keys


@pytest.mark.parametrize("name", ["in.crt", "in.key", "in-ca.crt", "out-chain.crt"])
def test_certificate_or_key_is_a_fifo(plain, proxy, name):
    fifo_link(plain.path(name))
    assert_refused(plain.config, str(plain.path(name)), "is a FIFO")


@pytest.mark.parametrize("name", ["in.key", "out-ca.crt"])
def test_certificate_or_key_is_dev_zero(plain, proxy, name):
    zero_link(plain.path(name))
    assert_refused(plain.config, str(plain.path(name)), "is a character device")


def test_fifo_key_while_running(plain, proxy):
    """Opening a FIFO for reading blocks until a writer comes: a proxy that
    did so would hang its main loop (no reload, no admin endpoint)."""
    replaced_while_running(plain, proxy, "in.key", fifo_link, "tunnel in:", "is a FIFO")


def test_100mb_root_ca(plain, proxy):
    """A CA file of 100 MB of real certificates, written in pieces."""
    pem = harness.pem_certs(plain.path("in-ca.crt"))
    big = plain.dir / "big-ca.crt"
    with open(big, "w") as f:
        for _ in range(100 * 1000 * 1000 // len(pem) + 1):
            f.write(pem)
    assert big.stat().st_size >= 100 * 1000 * 1000
    text = plain.text.replace("ca: in-ca.crt", "ca: big-ca.crt")
    assert_refused(plain.hostile_config("big-ca.yaml", text), str(big),
                   "larger than the 1 MiB limit")
    big.unlink()
    replaced_while_running(plain, proxy, "in-ca.crt",
                           lambda p: sparse(p, 100 * 1000 * 1000),
                           "tunnel in:", "larger than the 1 MiB limit")


def test_key_file_is_a_directory(plain, proxy):
    key = plain.path("out.key")
    make_dir(key)
    assert_refused(plain.config, "tunnel out:", str(key), "is a directory, not a regular file")
    os.rmdir(key)
    shutil.copy(plain.files["out.key"], key)
    replaced_while_running(plain, proxy, "out.key", make_dir, "is a directory")


def _encrypt(src, dest, legacy):
    """SRC's key encrypted with a passphrase: PKCS#8 (BEGIN ENCRYPTED
    PRIVATE KEY) or the legacy form (Proc-Type: 4,ENCRYPTED)."""
    if legacy:
        cmd = ["openssl", "ec", "-in", str(src), "-aes256", "-passout", "pass:secret"]
    else:
        cmd = ["openssl", "pkcs8", "-topk8", "-in", str(src), "-v2", "aes-256-cbc",
               "-passout", "pass:secret"]
    r = subprocess.run(cmd + ["-out", str(dest)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    text = Path(dest).read_text()
    assert ("Proc-Type: 4,ENCRYPTED" if legacy else "BEGIN ENCRYPTED PRIVATE KEY") in text


@pytest.mark.parametrize("legacy", [False, True], ids=["pkcs8", "proc-type"])
def test_encrypted_key(plain, proxy, legacy):
    key = plain.path("in.key")
    enc = plain.dir / "enc.key"
    _encrypt(key, enc, legacy)
    text = plain.text.replace("key: in.key", "key: enc.key")
    # never a prompt: stdin is /dev/null, and the run is bounded
    assert_refused(plain.hostile_config("enc.yaml", text), str(enc),
                   "encrypted private keys are not supported")
    replaced_while_running(plain, proxy, "in.key", lambda p: os.replace(enc, p),
                           "encrypted private keys are not supported")


# --------------------------------------------------------------------------
# key types: RSA-1024 and P-521 refused, Ed25519 served


def _tree(kind, args, root):
    out = os.path.join(root, kind)
    harness.run_pki(["nodes", out, "--nodes", "2"] + args)
    return NodesPKI(out)


@pytest.fixture(scope="module")
def key_trees():
    """Two-node trees: server keys RSA-1024, server keys P-521, and every
    key Ed25519; made at once in threads."""
    root = tempfile.mkdtemp(prefix="pp-keys-")
    kinds = {"rsa1024": ["--server-key", "rsa1024"], "p521": ["--server-key", "p521"],
             "ed25519": ["--key", "ed25519"]}
    try:
        with concurrent.futures.ThreadPoolExecutor(len(kinds)) as pool:
            futures = {k: pool.submit(_tree, k, a, root) for k, a in kinds.items()}
            yield {k: f.result(timeout=300) for k, f in futures.items()}
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("kind,why", [
    ("rsa1024", "RSA key of 1024 bits: too weak (accepted: RSA of 2048 to 16384 bits, "
                "ECDSA P-256 or P-384, Ed25519)"),
    ("p521", "ECDSA key on P-521: not supported"),
])
def test_refused_key_types(plain, proxy, key_trees, kind, why):
    node = key_trees[kind][1]
    shutil.copy(node.server_key, plain.dir / "weak.key")
    shutil.copy(node.server_crt, plain.dir / "weak.crt")
    text = plain.text.replace("cert: in.crt", "cert: weak.crt").replace("key: in.key", "key: weak.key")
    assert_refused(plain.hostile_config("weak.yaml", text), "tunnel in:",
                   str(plain.dir / "weak.key"), why)
    replaced_while_running(plain, proxy, "in.key",
                           lambda p: shutil.copy(node.server_key, p), why)


def test_ed25519_keys_serve_a_tunnel(link, key_trees):
    """Every key and signature Ed25519 (roots, cross certificates, leaves):
    a Swaptacular link works end to end."""
    tree = key_trees["ed25519"]
    assert "ED25519" in harness.cert_text(tree[1].server_crt)
    lk = link(tree=tree)
    assert roundtrip(lk.out_addr, b"over ed25519\n") == b"over ed25519\n"
    rec = lk.inbound.wait_event("tunnel_closed", tunnel="inbound")
    assert rec["peer"] == tree[0].id and rec["reason"] == "done", rec


def _client_leaf(generic_pki, d, newkey):
    """A client certificate under the generic CA with a key made by
    `openssl req -newkey NEWKEY`: (cert, key)."""
    key, csr, crt = d / "c.key", d / "c.csr", d / "c.crt"
    for cmd in (["openssl", "req", "-new", "-newkey"] + newkey.split() +
                ["-nodes", "-keyout", str(key), "-subj", "/CN=weak-client", "-out", str(csr)],
                ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(generic_pki.ca_crt),
                 "-CAkey", str(generic_pki.ca_key), "-set_serial", "4242", "-days", "2",
                 "-out", str(crt)]):
        r = subprocess.run(cmd, capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
    return crt, key


@pytest.mark.parametrize("newkey,reason,why", [
    ("rsa:1024", "bad_key", 'leaf "CN=weak-client": RSA key of 1024 bits: too weak'),
    # No P-521 signature algorithm is offered: OpenSSL finds no way to
    # sign with that key and sends no certificate at all.
    ("ec -pkeyopt ec_paramgen_curve:P-521", "no_certificate", "PEER_DID_NOT_RETURN_A_CERTIFICATE"),
], ids=["rsa1024", "p521"])
def test_a_peer_with_a_refused_key_type_is_refused(generic_pki, proxy, echo, tmp_path,
                                                   newkey, reason, why):
    """The same rule for what peers present: a client whose leaf has such a
    key is refused, and the log says why."""
    crt, key = _client_leaf(generic_pki, tmp_path, newkey)
    addr = "127.0.0.1:%d" % harness.free_port()
    inbound = proxy("inbound", "--listen", addr, "--target", echo.target,
                    "--ca", generic_pki.ca_crt, "--cert", generic_pki.server_crt,
                    "--key", generic_pki.server_key)
    ctx = harness.client_context(cafile=generic_pki.ca_crt)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let OpenSSL load the weak key
    ctx.load_cert_chain(str(crt), str(key))
    out = harness.tls_probe(addr, ctx)
    assert out.stage != "echo", out
    rec = inbound.wait_event("handshake_refused", tunnel="inbound")
    assert rec["reason"] == reason and why in rec["detail"], rec
    assert echo.accepted == 0


# --------------------------------------------------------------------------
# node data


@pytest.fixture
def tree(tmpdir_short):
    """A fresh two-node tree we may change, each stomp.toml pointing at the
    port its node's inbound listens on here."""
    out = "%s/pki" % tmpdir_short
    harness.run_pki(["nodes", out, "--nodes", "2"])
    t = NodesPKI(out)
    t.ports = {n.id: harness.free_port() for n in t.nodes}
    for n in t.nodes:
        for other in t.nodes:
            if other is not n:
                (n.peer_dir(other) / "nodeinfo" / "stomp.toml").write_text(
                    'servers = ["127.0.0.1:%d"]\n' % t.ports[other.id])
    t.tmp = tmpdir_short
    return t


def _nd_config(tree, node, backend, top="", name=None):
    path = Path(tree.tmp) / (name or "%s.yaml" % node.name)
    path.write_text(f"""workers: 1
{top}
nodedata:
  path: {node.dir}
  cert: {node.server_crt}
  key: {node.server_key}
  inbound: {{listen: "127.0.0.1:{tree.ports[node.id]}", target: {backend.target}}}
  outbound: {{socket_dir: {tree.tmp}/{node.name}-peers}}
""")
    return path


def _sock(tree, a, peer_id):
    return "%s/%s-peers/%s.sock" % (tree.tmp, a.name, peer_id)


def _call(tree, a, b, msg):
    """A's app calls B's app through A's socket for B."""
    return roundtrip("unix:" + _sock(tree, a, b.id), msg)


def _two_nodes(tree, proxy, server, top=""):
    n0, n1 = tree[0], tree[1]
    p0 = proxy("run", "--config", _nd_config(tree, n0, server(harness.echo_handler), top))
    p1 = proxy("run", "--config", _nd_config(tree, n1, server(harness.echo_handler)))
    assert _call(tree, n0, n1, b"before\n") == b"before\n"
    return p0, p1


def _assert_node_serves(tree, p0, tunnels, failed):
    n0, n1 = tree[0], tree[1]
    assert _call(tree, n0, n1, b"still served\n") == b"still served\n"
    status, doc = admin_json(p0.admin, "GET", "/status")
    assert status == 200, doc
    assert len(doc["tunnels"]) == tunnels, [t["name"] for t in doc["tunnels"]]
    assert doc["reloads"]["failure"] >= failed, doc["reloads"]
    m = scrape(p0.admin)
    assert metric(m, "peerproxy_reloads_total", result="failure") >= failed
    return doc


@pytest.mark.parametrize("rel", ["root-ca.crt", "db/nodeid"])
@pytest.mark.parametrize("make", [fifo_link, zero_link], ids=["fifo", "dev-zero"])
def test_node_file_is_a_fifo_or_dev_zero(tree, proxy, server, rel, make):
    """The node's own root and id are required: refused, naming the file;
    a running node keeps its old configuration."""
    n0 = tree[0]
    path = n0.dir / rel
    saved = path.read_bytes()
    make(path)
    why = "is a FIFO" if make is fifo_link else "is a character device"
    assert_refused(_nd_config(tree, n0, server(harness.echo_handler)), str(path), why)
    path.unlink()
    path.write_bytes(saved)
    p0, _ = _two_nodes(tree, proxy, server)
    mark = p0.mark()
    make(path)
    p0.send_signal(signal.SIGHUP)
    rec = p0.wait_event("reload_failed", since=mark, timeout=HANG)
    assert str(path) in rec["error"] and why in rec["error"], rec
    _assert_node_serves(tree, p0, 2, 1)


@pytest.mark.parametrize("rel", ["nodeinfo/stomp.toml", "root-ca.crt", "sub-ca.crt"])
def test_peer_file_is_a_fifo(tree, proxy, server, rel):
    """A peer's file that is a FIFO skips that peer with a warning naming
    the file; the node and its other peers go on."""
    n0, n1 = tree[0], tree[1]
    path = n0.peer_dir(n1) / rel
    fifo_link(path)
    rc, err, _ = bounded(["check", "--config", _nd_config(tree, n0, server(harness.echo_handler))])
    assert rc == 0, err
    assert any(str(path) in l and "is a FIFO" in l and "skipped" in l
               for l in err.splitlines()), err


def test_100mb_node_root_ca(tree, proxy, server):
    n0 = tree[0]
    path = n0.dir / "root-ca.crt"
    saved = path.read_bytes()
    sparse(path, 100 * 1000 * 1000)
    assert_refused(_nd_config(tree, n0, server(harness.echo_handler)), str(path),
                   "larger than the 1 MiB limit")
    path.write_bytes(saved)
    p0, _ = _two_nodes(tree, proxy, server)
    mark = p0.mark()
    sparse(path, 100 * 1000 * 1000)
    rec = p0.wait_event("reload_failed", since=mark, timeout=HANG)
    assert str(path) in rec["error"] and "1 MiB limit" in rec["error"], rec
    _assert_node_serves(tree, p0, 2, 1)


def _hostile_entries(peers, outside):
    """Entries of peers/ that must never be used in a path: names with
    "..", dot names, names that are not node ids, a peer directory that is
    a symlink out of the tree, a file.  Return (name, why) pairs."""
    os.mkdir(peers / "..evil")
    os.mkdir(peers / "...")
    os.mkdir(peers / ".hidden")
    os.mkdir(peers / "not-a-peer")
    (outside / "ACTIVE").write_text("")
    os.symlink(outside, peers / "0badc0de")
    (peers / "1badc0de").write_text("a file\n")
    return [("..evil", "not a node id"), ("...", "not a node id"),
            (".hidden", "not a node id"), ("not-a-peer", "not a node id"),
            ("0badc0de", "a symbolic link"), ("1badc0de", "not a directory")]


def test_peer_directory_names(tree, proxy, server):
    """Entries of peers/ that are not peers are skipped with a warning
    naming each; they get no socket; the real peer keeps working, also
    when they appear while the node runs."""
    n0, n1 = tree[0], tree[1]
    peers = n0.dir / "peers"
    outside = Path(tree.tmp) / "outside"
    outside.mkdir()
    expected = _hostile_entries(peers, outside)
    rc, err, _ = bounded(["check", "--config", _nd_config(tree, n0, server(harness.echo_handler))])
    assert rc == 0, err
    for name, why in expected:
        assert any("%s/%s skipped: %s" % (peers, name, why) in l for l in err.splitlines()), \
            (name, err)
    p0, _ = _two_nodes(tree, proxy, server)
    for name, why in expected:
        p0.wait_for(lambda r, n=name, w=why: r.get("event") == "config_warning"
                    and "%s/%s skipped: %s" % (peers, n, w) in r.get("msg", ""),
                    what="a warning for %s" % name)
    socks = sorted(os.listdir("%s/%s-peers" % (tree.tmp, n0.name)))
    assert socks == ["%s.sock" % n1.id], socks

    # a new hostile entry while running: the reload succeeds (its warnings
    # may fall under the log flood limit, repeated at every reload: check
    # names it), the real peer is untouched
    mark = p0.mark()
    os.mkdir(peers / "..again")
    p0.send_signal(signal.SIGHUP)
    p0.wait_event("reloaded", since=mark, trigger="SIGHUP", timeout=HANG)
    rc, out, _ = bounded(["check", "--config", _nd_config(tree, n0, server(harness.echo_handler),
                                                          name="again.yaml")])
    assert rc == 0 and "%s/..again skipped: not a node id" % peers in out, out
    assert _call(tree, n0, n1, b"after\n") == b"after\n"
    assert sorted(os.listdir("%s/%s-peers" % (tree.tmp, n0.name))) == ["%s.sock" % n1.id]


MANY = 1500 if harness.sanitized() else 5000


def _add_peers(tree, node, like, count):
    """COUNT more peer directories in NODE, named by fresh node ids, their
    files hard links to LIKE's: cheap, and each loads (its chain verifies
    against its root)."""
    src = node.peer_dir(like)
    for _ in range(count):
        d = node.dir / "peers" / secrets.token_hex(16)
        (d / "nodeinfo").mkdir(parents=True)
        for rel in ("root-ca.crt", "sub-ca.crt", "ACTIVE", "nodeinfo/stomp.toml"):
            os.link(src / rel, d / rel)


def test_thousands_of_peers(tree, proxy, server):
    """MANY peers load within bounds, one socket each; more than 10,000
    peer directories are refused (a running node keeps its old peers);
    too few descriptors for the sockets is an error naming the limit; and
    once the peers are gone, their memory is given back."""
    n0, n1 = tree[0], tree[1]
    _add_peers(tree, n0, n1, MANY)
    config = _nd_config(tree, n0, server(harness.echo_handler), top="log: {level: debug}")
    rc, out, _ = bounded(["check", "--config", config], timeout=120)
    assert rc == 0 and "configuration OK (%d tunnels)" % (MANY + 2) in out, out[-2000:]
    # the descriptors: one per listener (MANY + 1 peers, the inbound) and
    # worker
    rc, out, _ = bounded(["check", "--config", config], timeout=120, nofile=MANY)
    assert rc == 2, out[-2000:]
    assert any("RLIMIT_NOFILE of %d" % MANY in l and "%d listeners x 1 workers" % (MANY + 2) in l
               for l in out.splitlines()), out[-2000:]

    p0 = proxy("run", "--config", config, ready_timeout=120)
    proxy("run", "--config", _nd_config(tree, n1, server(harness.echo_handler)))
    socks = os.listdir("%s/%s-peers" % (tree.tmp, n0.name))
    assert len(socks) == MANY + 1, len(socks)
    assert _call(tree, n0, n1, b"one of many\n") == b"one of many\n"
    if not harness.sanitized():
        assert harness.rss_kib(p0.pid) < MEM_KIB

    # past the limit: refused at the rescan, before a tunnel is made.  The
    # file watch may have reloaded while the directories were being made
    # (each reload seeing some of them): the old configuration is the
    # last one a reload or the start applied, and once all are there no
    # reload can succeed.
    _add_peers(tree, n0, n1, 10001 - (MANY + 1))
    mark = p0.mark()
    p0.send_signal(signal.SIGHUP)
    rec = p0.wait_event("reload_failed", since=mark, trigger="SIGHUP", timeout=60)
    assert "10001 peer directories, more than the 10000 a node may have" in rec["error"], rec
    assert "%s/peers" % n0.dir in rec["error"], rec
    applied = [r for r in p0.events() if r.get("event") in ("ready", "reloaded")][-1]
    old = int(applied["tunnels"])
    assert MANY + 2 <= old <= 10001, applied
    _assert_node_serves(tree, p0, old, 1)
    rss = harness.rss_kib(p0.pid)
    assert harness.sanitized() or rss < MEM_KIB

    # every peer but node1 leaves: the reload frees the snapshot that held
    # them (the first one, which the process used to keep for good); the
    # watch may apply the removal in steps, the last leaves two tunnels
    for entry in os.listdir(n0.dir / "peers"):
        if entry != n1.id:
            shutil.rmtree(n0.dir / "peers" / entry)
    mark = p0.mark()
    p0.send_signal(signal.SIGHUP)
    last = p0.wait_for(lambda r: r.get("event") == "reloaded" and r.get("tunnels") == "2",
                       since=mark, timeout=60, what="a reload down to two tunnels")
    with p0.cond:
        after = next(i for i in range(mark, len(p0.records)) if p0.records[i] is last) + 1
    trim = p0.wait_event("memory_trimmed", since=after, after="reload", timeout=HANG)
    if not harness.sanitized():
        assert int(trim["rss_after_kib"]) < rss / 2, (trim, rss)
    assert _call(tree, n0, n1, b"alone again\n") == b"alone again\n"
