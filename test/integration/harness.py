"""Building blocks for peerproxy's end-to-end tests.

Everything here uses the Python standard library only: processes with their
stderr collected and parsed as logfmt, loopback ports reserved across
concurrent test processes, small threaded servers (echo, request-then-close,
sink, ...), plain and TLS clients, and loaders for the PKI trees that
test/pki/pki writes.

Nothing in this module sleeps to synchronise: waits are on a log line, a
socket event or a process exit, always with a deadline.
"""

import ctypes
import errno
import fcntl
import functools
import hashlib
import json
import os
import random
import re
import selectors
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROXY_BIN = os.environ.get("PEERPROXY_BIN") or str(REPO / "build" / "peerproxy")


@functools.lru_cache(maxsize=None)
def sanitized():
    """True if the binary under test is an ASan or TSan build (their
    allocators keep freed memory to themselves: RSS says nothing about
    ours)."""
    with open(PROXY_BIN, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


def rss_kib(pid):
    """The resident set size of process PID, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
PKI_BIN = os.environ.get("PEERPROXY_PKI") or str(REPO / "test" / "pki" / "pki")
OPENSSL = os.environ.get("PEERPROXY_OPENSSL") or "openssl"

# Default deadlines (seconds).  Generous for a loaded 2-core machine, short
# enough that a hung peer fails a test instead of the whole run.
READY_TIMEOUT = 15.0
EVENT_TIMEOUT = 10.0
IO_TIMEOUT = 15.0


# --------------------------------------------------------------------------
# logfmt

_LOGFMT_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|[^\s]*)')
_ESCAPE = re.compile(r'\\(u[0-9a-fA-F]{4}|.)')


def _unescape(m):
    s = m.group(1)
    if s[0] == "u" and len(s) == 5:
        return chr(int(s[1:], 16))
    return {"n": "\n", "t": "\t", "r": "\r"}.get(s, s)


def parse_logfmt(line):
    """Parse one logfmt line into a dict (quoted values are unescaped)."""
    out = {}
    for key, val in _LOGFMT_PAIR.findall(line):
        if val.startswith('"') and val.endswith('"') and len(val) >= 2:
            val = _ESCAPE.sub(_unescape, val[1:-1])
        out[key] = val
    return out


def _matches(rec, criteria):
    for key, want in criteria.items():
        if key not in rec:
            return False
        if callable(want):
            if not want(rec[key]):
                return False
        elif rec[key] != str(want):
            return False
    return True


def remote_port_is(port):
    """Predicate for a `remote=` field: the address ends with :PORT."""
    suffix = ":%d" % port
    return lambda v: v.endswith(suffix)


# --------------------------------------------------------------------------
# ports

_PORT_LOCK_DIR = Path(tempfile.gettempdir()) / "peerproxy-test-ports"
_held_ports = {}
_port_mutex = threading.Lock()


def _bindable(port):
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((host, port))
        except OSError as e:
            if family == socket.AF_INET6 and e.errno == errno.EADDRNOTAVAIL:
                continue  # no IPv6 loopback here: IPv4 decides
            return False
        finally:
            s.close()
    return True


def free_port():
    """Return a loopback TCP port nobody else in this machine's test runs holds.

    Ports come from below the kernel's ephemeral range (so no outgoing
    connection can take them as a source port) and are reserved with an
    flock on a per-port file, held until this process exits: parallel test
    processes (pytest-xdist, two checkouts) never get the same port.
    """
    _PORT_LOCK_DIR.mkdir(exist_ok=True)
    with _port_mutex:
        for _ in range(500):
            port = random.randint(21000, 32000)
            if port in _held_ports:
                continue
            fd = os.open(str(_PORT_LOCK_DIR / str(port)), os.O_CREAT | os.O_RDWR, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            if _bindable(port):
                _held_ports[port] = fd
                return port
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
    raise RuntimeError("no free loopback port found")


def short_tmpdir(prefix="pp"):
    """A fresh directory with a short path (unix socket paths are <108 bytes)."""
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


def have_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# processes

_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # The child gets SIGKILL if the test runner dies: no orphan proxies.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


class ProcessFailure(AssertionError):
    pass


# What a sanitizer writes when it finds something: AddressSanitizer and
# LeakSanitizer errors, ThreadSanitizer warnings, UBSan's runtime errors.
# The process may go on (TSan) or exit with no other sign of trouble
# (LeakSanitizer at exit), so the suite reads the proxies' stderr for them.
_SANITIZER_REPORT = re.compile(
    r"(==\d+==ERROR: \w+Sanitizer|WARNING: ThreadSanitizer|: runtime error: )")

# Every Proc of the binary under test since the last take_proxy_procs().
_proxy_procs = []
_proxy_procs_lock = threading.Lock()


def take_proxy_procs():
    """The Procs of the binary under test started since the last call."""
    with _proxy_procs_lock:
        taken = list(_proxy_procs)
        del _proxy_procs[:]
    return taken


class Proc:
    """A child process whose stdout and stderr lines are collected by threads.

    wait_for()/wait_event() block on a condition variable until a matching
    line arrives, the process exits, or the deadline passes.
    """

    def __init__(self, argv, name=None, stdin=subprocess.DEVNULL, env=None, cwd=None):
        self.argv = [str(a) for a in argv]
        self.name = name or os.path.basename(self.argv[0])
        self.cond = threading.Condition()
        self.err_lines = []
        self.out_lines = []
        self.records = []  # parsed stderr lines, same index as err_lines
        self._eof = {"out": False, "err": False}
        self.popen = subprocess.Popen(
            self.argv,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            preexec_fn=_die_with_parent,
        )
        self.pid = self.popen.pid
        if os.path.realpath(self.argv[0]) == os.path.realpath(PROXY_BIN):
            with _proxy_procs_lock:
                _proxy_procs.append(self)
        self._threads = [
            threading.Thread(target=self._reader, args=(self.popen.stderr, "err"), daemon=True),
            threading.Thread(target=self._reader, args=(self.popen.stdout, "out"), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _reader(self, stream, which):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self.cond:
                if which == "err":
                    self.err_lines.append(line)
                    self.records.append(parse_logfmt(line))
                else:
                    self.out_lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self._eof[which] = True
            self.cond.notify_all()
        stream.close()

    # -- inspection -------------------------------------------------------

    def log_text(self, limit=400):
        with self.cond:
            lines = list(self.err_lines)
        if len(lines) > limit:
            lines = ["... (%d lines omitted)" % (len(lines) - limit)] + lines[-limit:]
        return "\n".join(lines)

    def describe(self):
        rc = self.popen.poll()
        return "%s (pid %d, %s) %s\n--- stderr ---\n%s\n--- stdout ---\n%s" % (
            self.name,
            self.pid,
            "running" if rc is None else "exit %s" % rc,
            " ".join(self.argv),
            self.log_text(),
            "\n".join(self.out_lines[-50:]),
        )

    def events(self, event=None, **criteria):
        """Parsed stderr records with event=EVENT whose fields match."""
        if event is not None:
            criteria = dict(criteria, event=event)
        with self.cond:
            recs = list(self.records)
        return [r for r in recs if _matches(r, criteria)]

    def mark(self):
        """Index of the next stderr line: pass as `since` to wait for lines
        that arrive after this point."""
        with self.cond:
            return len(self.err_lines)

    def sanitizer_reports(self):
        """The lines of stderr where a sanitizer reports an error."""
        with self.cond:
            return [line for line in self.err_lines if _SANITIZER_REPORT.search(line)]

    # -- waiting ----------------------------------------------------------

    def wait_for(self, pred, timeout=EVENT_TIMEOUT, since=0, what="a matching line"):
        """Wait for a parsed stderr record satisfying pred(record); return it."""
        deadline = time.monotonic() + timeout
        idx = since
        with self.cond:
            while True:
                while idx < len(self.records):
                    rec = self.records[idx]
                    idx += 1
                    if pred(rec):
                        return rec
                if self._eof["err"]:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.cond.wait(remaining)
        raise ProcessFailure("timed out after %.1fs (or process ended) waiting for %s in\n%s"
                             % (timeout, what, self.describe()))

    def wait_event(self, event, timeout=EVENT_TIMEOUT, since=0, **criteria):
        crit = dict(criteria, event=event)
        return self.wait_for(lambda r: _matches(r, crit), timeout, since,
                             what="event=%s %s" % (event, criteria or ""))

    def wait_events(self, event, count, timeout=EVENT_TIMEOUT, since=0, **criteria):
        """Wait until at least COUNT matching records exist; return them."""
        crit = dict(criteria, event=event)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [r for r in self.records[since:] if _matches(r, crit)]
                if len(found) >= count or self._eof["err"]:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.cond.wait(remaining)
        if len(found) < count:
            raise ProcessFailure("expected %d x event=%s %s, saw %d\n%s"
                                 % (count, event, criteria, len(found), self.describe()))
        return found

    def wait_stdout(self, pred, timeout=EVENT_TIMEOUT, what="stdout line"):
        deadline = time.monotonic() + timeout
        idx = 0
        with self.cond:
            while True:
                while idx < len(self.out_lines):
                    line = self.out_lines[idx]
                    idx += 1
                    if pred(line):
                        return line
                if self._eof["out"]:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.cond.wait(remaining)
        raise ProcessFailure("timed out waiting for %s\n%s" % (what, self.describe()))

    def wait_exit(self, timeout):
        try:
            rc = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise ProcessFailure("process did not exit within %.1fs\n%s" % (timeout, self.describe()))
        for t in self._threads:
            t.join(5)
        return rc

    # -- control ----------------------------------------------------------

    def running(self):
        return self.popen.poll() is None

    def send_signal(self, sig):
        self.popen.send_signal(sig)

    def stop(self, grace=5.0):
        """Terminate (then kill) the process; idempotent.  Returns exit code."""
        if self.popen.poll() is None:
            try:
                self.popen.terminate()
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
            except ProcessLookupError:
                pass
        for t in self._threads:
            t.join(2)
        if self.popen.stdin:
            try:
                self.popen.stdin.close()
            except OSError:
                pass
        return self.popen.returncode

    def rss_kib(self):
        """Resident set size in KiB (VmRSS of /proc/<pid>/status)."""
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise ProcessFailure("no VmRSS for pid %d" % self.pid)


def start_proxy(args, name=None, ready_timeout=READY_TIMEOUT, registry=None):
    """Start `peerproxy ARGS...` and wait for its `event=ready` line.

    The Proc is appended to REGISTRY (a list a fixture cleans up) before
    waiting, so it is killed even when it never becomes ready.
    """
    args = [str(a) for a in args]
    # PEERPROXY_TEST_WORKERS runs the whole suite at a given worker count
    # (test/run uses 1 and 4); a test that sets --workers itself wins.
    workers = os.environ.get("PEERPROXY_TEST_WORKERS")
    if workers and args and args[0] in ("inbound", "outbound") and "--workers" not in args:
        args += ["--workers", workers]
    # Every proxy gets an admin endpoint of its own (run's default port
    # would clash between the proxies of one test): p.admin is its address.
    admin = None
    if args and args[0] in ("inbound", "outbound", "run") and not any(
            a == "--admin" or a.startswith("--admin=") for a in args):
        admin = "127.0.0.1:%d" % free_port()
        args += ["--admin", admin]
    p = Proc([PROXY_BIN] + args, name=name or "peerproxy " + args[0])
    p.admin = admin
    if registry is not None:
        registry.append(p)
    try:
        p.wait_event("ready", timeout=ready_timeout)
    except ProcessFailure:
        p.stop()
        raise
    return p


def run_cli(args, timeout=10, binary=None):
    """Run the proxy binary to completion; return (returncode, stdout, stderr).

    If the process logs event=ready (a configuration error went unnoticed
    and it started serving) or has not exited after TIMEOUT, it is killed
    and returncode is None.
    """
    p = Proc([binary or PROXY_BIN] + [str(a) for a in args], name="peerproxy cli")
    rc = None
    try:
        p.wait_for(lambda r: r.get("event") == "ready", timeout=timeout, what="exit or ready")
    except ProcessFailure:
        rc = p.popen.poll()
    if rc is None:
        try:
            rc = p.popen.wait(2)  # the stream closed just before the exit
        except subprocess.TimeoutExpired:
            rc = None
    if rc is None:
        p.popen.kill()
    p.stop()
    out = "\n".join(p.out_lines) + ("\n" if p.out_lines else "")
    err = "\n".join(p.err_lines) + ("\n" if p.err_lines else "")
    return rc, out, err


# --------------------------------------------------------------------------
# servers

class Server:
    """A listening socket served by threads; HANDLER(conn, server) runs once
    per accepted connection in its own thread.

    kind: "tcp" (127.0.0.1), "tcp6" (::1) or "unix" (a path in a fresh
    short temp dir).  `.target` is the ADDR string peerproxy takes.
    """

    def __init__(self, handler, kind="tcp", backlog=1024, port=None):
        self.handler = handler
        self.kind = kind
        self.conns = []
        self.errors = []
        self.results = []
        self.accepted = 0
        self.keep = set()  # connections a handler leaves open until close()
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self._stop = threading.Event()
        if kind == "unix":
            self._dir = short_tmpdir("ppsrv")
            self.path = os.path.join(self._dir, "srv.sock")
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(self.path)
            self.target = "unix:" + self.path
        else:
            family, host = (socket.AF_INET6, "::1") if kind == "tcp6" else (socket.AF_INET, "127.0.0.1")
            self.sock = socket.socket(family, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.port = port or free_port()
            self.sock.bind((host, self.port))
            self.host = host
            self.target = ("[%s]:%d" if family == socket.AF_INET6 else "%s:%d") % (host, self.port)
        self.sock.listen(backlog)
        self.sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                raise
            conn.settimeout(IO_TIMEOUT * 4)
            with self.cond:
                self.conns.append(conn)
                self.accepted += 1
                self.cond.notify_all()
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        try:
            res = self.handler(conn, self)
            if res is not None:
                with self.cond:
                    self.results.append(res)
                    self.cond.notify_all()
        except Exception as e:  # recorded; tests look at .errors when it matters
            with self.cond:
                self.errors.append(e)
                self.cond.notify_all()
        finally:
            if conn not in self.keep:
                try:
                    conn.close()
                except OSError:
                    pass

    def wait_results(self, count, timeout=EVENT_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.results) + len(self.errors) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("server: %d results / %d errors, wanted %d: %r"
                                         % (len(self.results), len(self.errors), count, self.errors))
                self.cond.wait(remaining)
            if self.errors:
                raise AssertionError("server handler failed: %r" % (self.errors,))
            return list(self.results)

    def wait_accepted(self, count, timeout=EVENT_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.accepted < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("server accepted %d connections, wanted %d" % (self.accepted, count))
                self.cond.wait(remaining)

    def close(self):
        self._stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
        self._thread.join(2)
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.close()
            except OSError:
                pass
        if self.kind == "unix":
            try:
                os.unlink(self.path)
                os.rmdir(self._dir)
            except OSError:
                pass


def echo_handler(conn, server):
    """Echo every byte as it arrives; at EOF half-close (FIN) and return the
    byte count and sha256 of what was received."""
    h = hashlib.sha256()
    n = 0
    while True:
        data = conn.recv(262144)
        if not data:
            break
        h.update(data)
        n += len(data)
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)
    return {"received": n, "sha256": h.hexdigest()}


def response_for(request):
    """The deterministic response of request_then_close_handler."""
    digest = hashlib.sha256(request).hexdigest().encode()
    body = hashlib.sha256(b"body" + digest).digest() * 40000  # 1.28 MB
    return b"LEN %d SHA256 %s\n" % (len(request), digest) + body


def request_then_close_handler(conn, server):
    """Read the request until EOF, and only then send the response and close."""
    chunks = []
    while True:
        data = conn.recv(262144)
        if not data:
            break
        chunks.append(data)
    req = b"".join(chunks)
    conn.sendall(response_for(req))
    conn.shutdown(socket.SHUT_WR)
    return {"received": len(req)}


GREETING = hashlib.sha256(b"greeting").digest() * 32768  # 1 MiB


def server_half_closes_first_handler(conn, server):
    """Send GREETING, half-close (FIN) at once, then keep reading until EOF
    and return what was read: the client's data flows after our FIN."""
    conn.sendall(GREETING)
    conn.shutdown(socket.SHUT_WR)
    h = hashlib.sha256()
    n = 0
    while True:
        data = conn.recv(262144)
        if not data:
            break
        h.update(data)
        n += len(data)
    return {"received": n, "sha256": h.hexdigest()}


def server_closes_handler(conn, server):
    """Read one line, answer with 1 MiB and close the connection fully while
    the client has not closed anything (server-initiated close)."""
    buf = b""
    while b"\n" not in buf:
        data = conn.recv(4096)
        if not data:
            return {"line": None}
        buf += data
    conn.sendall(b"OK " + buf.split(b"\n", 1)[0] + b"\n" + GREETING)
    conn.close()
    return {"line": buf.split(b"\n", 1)[0]}


def sink_handler(conn, server):
    """Accept and never read: the peer's writes must eventually block.
    The connection stays open until server.close()."""
    with server.lock:
        server.keep.add(conn)
    server._stop.wait(120)
    return None


# --------------------------------------------------------------------------
# clients

def parse_addr(addr):
    """peerproxy ADDR -> (family, sockaddr)."""
    if addr.startswith("unix:"):
        return socket.AF_UNIX, addr[5:]
    if addr.startswith("["):
        host, _, port = addr[1:].partition("]:")
        return socket.AF_INET6, (host, int(port))
    host, _, port = addr.rpartition(":")
    return socket.AF_INET, (host, int(port))


def connect(addr, timeout=IO_TIMEOUT):
    family, sa = parse_addr(addr)
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sa)
    return s


def recv_all(sock, limit=None):
    """Read until EOF (or LIMIT bytes); return bytes."""
    chunks = []
    n = 0
    while limit is None or n < limit:
        data = sock.recv(262144 if limit is None else min(262144, limit - n))
        if not data:
            break
        chunks.append(data)
        n += len(data)
    return b"".join(chunks)


def recv_exact(sock, n):
    data = recv_all(sock, n)
    if len(data) != n:
        raise AssertionError("connection ended after %d of %d bytes" % (len(data), n))
    return data


def recv_line(sock, limit=65536):
    buf = b""
    while not buf.endswith(b"\n") and len(buf) < limit:
        data = sock.recv(1)
        if not data:
            break
        buf += data
    return buf


def roundtrip(addr, payload, timeout=IO_TIMEOUT):
    """Connect, send PAYLOAD, half-close, read until EOF; return the bytes read."""
    s = connect(addr, timeout)
    try:
        sender = threading.Thread(target=send_then_shutdown, args=(s, payload), daemon=True)
        sender.start()
        got = recv_all(s)
        sender.join(timeout)
        return got
    finally:
        s.close()


def call_expecting_refusal(addr, payload, timeout=IO_TIMEOUT):
    """Connect to ADDR, send PAYLOAD, read until EOF; return the bytes read.

    A reset at any step (an outbound dials as soon as it accepts, so a
    refusal can reset the socket before connect() even returns here) counts
    as the end of the call, and whatever was read before it is returned.
    """
    got = b""
    try:
        s = connect(addr, timeout)
    except ConnectionResetError:
        return got
    try:
        s.sendall(payload)
        while True:
            data = s.recv(65536)
            if not data:
                break
            got += data
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        s.close()
    return got


def send_until_blocked(s, total, block, seconds=6.0, stall=1.5):
    """Write BLOCK repeatedly into socket S (up to TOTAL bytes, for at most
    SECONDS) and stop once no byte has gone out for STALL seconds: the
    pipeline behind S is full.  Returns (bytes sent, seconds blocked; 0.0
    if it never blocked)."""
    s.settimeout(0.25)
    sent, t0 = 0, time.monotonic()
    last_progress = t0
    while sent < total and time.monotonic() - t0 < seconds:
        try:
            n = s.send(block[: min(len(block), total - sent)])
        except socket.timeout:
            n = 0
        now = time.monotonic()
        if n:
            sent, last_progress = sent + n, now
        elif now - last_progress >= stall:
            return sent, now - last_progress
    return sent, 0.0


def outbound_yaml(name, listen, a, b, target, limits=None):
    """A `run` configuration's outbound tunnel entry: node A's link to node
    B's inbound at TARGET (LIMITS: the text of a `limits:` override)."""
    extra = "    limits: {%s}\n" % limits if limits else ""
    return f"""  - name: {name}
    listen: {listen}
    targets: [{target}]
    ca: {a.peer_dir(b) / "root-ca.crt"}
    cert: {a.server_crt}
    chain: {a.peer_dir(b) / "sub-ca.crt"}
    key: {a.server_key}
{extra}    peer: {b.id}
"""


def admin_request(addr, method, path, body=b"", timeout=IO_TIMEOUT):
    """One HTTP request to the admin endpoint at ADDR.

    Returns (status, headers dict with lower-case names, body bytes).
    """
    s = connect(addr, timeout)
    try:
        head = "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n" % (
            method, path, addr, len(body))
        s.sendall(head.encode() + body)
        data = recv_all(s)
    finally:
        s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


def admin_json(addr, method, path):
    """(status, decoded JSON body) of an admin request."""
    status, _, body = admin_request(addr, method, path)
    return status, json.loads(body)


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Parse Prometheus text exposition into {(name, frozenset(labels)): value}.

    Checks the format as it goes: every sample's family has a TYPE line
    before it, families are not split, values are numbers.
    """
    samples, types, seen_families, current = {}, {}, set(), None
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert name not in types, "TYPE given twice for %s" % name
            types[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in types:
                family = name[:-len(suffix)]
        assert family in types, "sample %s before its TYPE line" % name
        if family != current:
            assert family not in seen_families, "family %s split" % family
            seen_families.add(family)
            current = family
        key = (name, frozenset(_LABEL.findall(labels)))
        assert key not in samples, "duplicate sample %r" % (key,)
        samples[key] = float(value)
    return samples


def metric(samples, name, **labels):
    """The value of NAME with exactly LABELS (0.0 if absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(addr):
    status, headers, body = admin_request(addr, "GET", "/metrics")
    assert status == 200, (status, body)
    assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
    return parse_metrics(body.decode())


def send_then_shutdown(s, payload):
    try:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def streaming_exchange(addr, size, chunk=1 << 20, timeout=60.0):
    """Send SIZE random bytes while reading the reply in parallel threads.

    Returns (sha256 sent, sha256 received, bytes received, local port).
    """
    s = connect(addr, timeout)
    block = os.urandom(chunk)
    sent_hash = hashlib.sha256()
    state = {"error": None}

    def sender():
        try:
            left = size
            i = 0
            while left > 0:
                # vary every block so reordering or duplication shows up
                piece = (i.to_bytes(8, "big") + block[8:])[:min(chunk, left)]
                sent_hash.update(piece)
                s.sendall(piece)
                left -= len(piece)
                i += 1
            s.shutdown(socket.SHUT_WR)
        except Exception as e:
            state["error"] = e

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    recv_hash = hashlib.sha256()
    n = 0
    try:
        while True:
            data = s.recv(1 << 20)
            if not data:
                break
            recv_hash.update(data)
            n += len(data)
        t.join(timeout)
        if state["error"]:
            raise AssertionError("sender failed: %r" % (state["error"],))
        return sent_hash.hexdigest(), recv_hash.hexdigest(), n, s.getsockname()
    finally:
        s.close()


def many_roundtrips(addr, payloads, timeout=60.0):
    """Open len(PAYLOADS) connections at once, each sends its payload,
    half-closes and reads until EOF; one thread, driven by selectors.

    Returns a list with, for each connection, the bytes read or an exception.
    """
    family, sa = parse_addr(addr)
    sel = selectors.DefaultSelector()
    results = [None] * len(payloads)
    pending = 0
    for i, payload in enumerate(payloads):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(sa)
        if err not in (0, errno.EINPROGRESS):
            results[i] = OSError(err, os.strerror(err))
            s.close()
            continue
        st = {"i": i, "sock": s, "out": memoryview(payload), "in": bytearray(), "wr": True}
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, st)
        pending += 1
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=0.5):
            st = key.data
            s = st["sock"]
            try:
                if ev & selectors.EVENT_WRITE and st["wr"]:
                    if st["out"]:
                        n = s.send(st["out"])
                        st["out"] = st["out"][n:]
                    if not st["out"]:
                        s.shutdown(socket.SHUT_WR)
                        st["wr"] = False
                        sel.modify(s, selectors.EVENT_READ, st)
                if ev & selectors.EVENT_READ:
                    data = s.recv(65536)
                    if data:
                        st["in"] += data
                    else:
                        results[st["i"]] = bytes(st["in"])
                        sel.unregister(s)
                        s.close()
                        pending -= 1
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as e:
                results[st["i"]] = e
                sel.unregister(s)
                s.close()
                pending -= 1
    for key in list(sel.get_map().values()):
        st = key.data
        results[st["i"]] = TimeoutError("no EOF after %.0fs (%d bytes read)" % (timeout, len(st["in"])))
        key.fileobj.close()
    sel.close()
    return results


# TLS clients (Python's ssl = the system OpenSSL 3)

def client_context(certfile=None, keyfile=None, cafile=None, min_version=None,
                   max_version=None, verify=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=str(cafile))
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if certfile:
        ctx.load_cert_chain(str(certfile), str(keyfile))
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    return ctx


class TlsOutcome:
    """What a TLS client saw: `stage` is "handshake" when the handshake
    failed, "read" when it completed but the first read failed or hit EOF,
    "echo" when data came back."""

    def __init__(self, stage, data=b"", error=None, local_port=None, version=None):
        self.stage = stage
        self.data = data
        self.error = error
        self.local_port = local_port
        self.version = version

    def __repr__(self):
        return "TlsOutcome(stage=%s, data=%r, error=%r, port=%s, version=%s)" % (
            self.stage, self.data[:80], self.error, self.local_port, self.version)


def tls_probe(addr, ctx, message=b"ping peerproxy\n", timeout=IO_TIMEOUT, server_hostname=None):
    """TLS-connect to ADDR, send MESSAGE, and read until the echo of MESSAGE
    arrives, EOF, or an error.  Always reads (pki.md pitfall 6: a TLS 1.3
    client learns of its rejection only on its first read)."""
    family, sa = parse_addr(addr)
    raw = socket.socket(family, socket.SOCK_STREAM)
    raw.settimeout(timeout)
    raw.connect(sa)
    local_port = raw.getsockname()[1] if family != socket.AF_UNIX else None
    tls = ctx.wrap_socket(raw, server_hostname=server_hostname, do_handshake_on_connect=False)
    try:
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError) as e:
            return TlsOutcome("handshake", error=e, local_port=local_port)
        version = tls.version()
        try:
            tls.sendall(message)
        except (ssl.SSLError, OSError):
            pass  # the read below tells what happened
        buf = b""
        try:
            while len(buf) < len(message):
                data = tls.recv(4096)
                if not data:
                    break
                buf += data
        except (ssl.SSLError, OSError) as e:
            return TlsOutcome("read", data=buf, error=e, local_port=local_port, version=version)
        if not buf:
            return TlsOutcome("read", data=buf, error=EOFError("EOF"), local_port=local_port, version=version)
        return TlsOutcome("echo", data=buf, local_port=local_port, version=version)
    finally:
        try:
            tls.close()
        except OSError:
            pass


class FakeTlsServer(Server):
    """A TLS echo server presenting CERTFILE (leaf + chain) / KEYFILE; it
    optionally requires a client certificate verified against CAFILE."""

    def __init__(self, certfile, keyfile, cafile=None, kind="tcp"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(certfile), str(keyfile))
        if cafile:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cafile=str(cafile))
        self.ctx = ctx
        self.handshakes = 0
        super().__init__(self._handle, kind=kind)

    def _handle(self, conn, server):
        tls = self.ctx.wrap_socket(conn, server_side=True)
        with self.cond:
            self.handshakes += 1
        return echo_handler(tls, server)


# --------------------------------------------------------------------------
# PKI trees written by test/pki/pki

def pki_available():
    return os.access(PKI_BIN, os.X_OK)


def run_pki(args, timeout=300):
    if not pki_available():
        raise RuntimeError("PKI generator %s is missing or not executable (set PEERPROXY_PKI)" % PKI_BIN)
    r = subprocess.run([PKI_BIN] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, preexec_fn=_die_with_parent)
    if r.returncode != 0:
        raise RuntimeError("%s %s failed (exit %d):\n%s\n%s" % (
            PKI_BIN, " ".join(map(str, args)), r.returncode,
            r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")))
    return r


class Node:
    def __init__(self, out, entry):
        self.name = entry["name"]
        self.id = entry["id"]
        self.ou = entry.get("ou")
        d = Path(entry.get("dir") or self.name)
        self.dir = d if d.is_absolute() else Path(out) / d
        self.root_ca = self.dir / "root-ca.crt"
        self.root_key = self.dir / "root-ca.key"
        self.server_crt = self.dir / "server.crt"
        self.server_key = self.dir / "server.key"

    def peer_dir(self, other):
        return self.dir / "peers" / other.id

    def __repr__(self):
        return "Node(%s, %s)" % (self.name, self.id)


class NodesPKI:
    """OUT of `pki nodes OUT ...`: .nodes, .vectors (with --forged)."""

    def __init__(self, out):
        self.out = Path(out)
        with open(self.out / "nodes.json") as f:
            self.nodes = [Node(self.out, e) for e in json.load(f)]
        self.vectors = []
        vf = self.out / "forged" / "vectors.json"
        if vf.exists():
            with open(vf) as f:
                self.vectors = json.load(f)

    def __getitem__(self, i):
        return self.nodes[i]

    def vector(self, name):
        for v in self.vectors:
            if v["name"] == name:
                return v
        raise KeyError(name)

    def vector_dir(self, name):
        d = self.vector(name).get("dir")
        return Path(d) if d else self.out / "forged" / name

    # command-line fragments for a Swaptacular link A -> B

    def outbound_args(self, a, b, peer=True):
        args = ["--ca", a.peer_dir(b) / "root-ca.crt", "--cert", a.server_crt,
                "--chain", a.peer_dir(b) / "sub-ca.crt", "--key", a.server_key]
        if peer:
            args += ["--peer", b.id]
        return args

    def inbound_args(self, b):
        return ["--ca", b.root_ca, "--cert", b.server_crt, "--key", b.server_key]

    def client_chain_file(self, a, b):
        """A's leaf followed by the cross certificate B signed for A (the
        chain A presents to B), as one PEM file inside the tree."""
        d = self.out / "chains"
        d.mkdir(exist_ok=True)
        path = d / ("%s-to-%s-chain.pem" % (a.name, b.name))
        tmp = path.with_suffix(".tmp%d" % threading.get_ident())
        tmp.write_text(pem_certs(a.server_crt) + pem_certs(a.peer_dir(b) / "sub-ca.crt"))
        os.replace(tmp, path)
        return path


_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\s*", re.S)


def pem_certs(path):
    """The certificate PEM blocks of PATH, without any text before them."""
    return "".join(m.group(0).rstrip() + "\n" for m in _PEM_CERT.finditer(Path(path).read_text()))


def split_chain(path, tmpdir):
    """Split a chain PEM into (leaf file, rest file or None)."""
    blocks = [m.group(0).rstrip() + "\n" for m in _PEM_CERT.finditer(Path(path).read_text())]
    if not blocks:
        raise AssertionError("no certificate in %s" % path)
    d = Path(tmpdir)
    d.mkdir(parents=True, exist_ok=True)
    leaf = d / ("%s-leaf.pem" % Path(path).parent.name)
    leaf.write_text(blocks[0])
    rest = None
    if len(blocks) > 1:
        rest = d / ("%s-rest.pem" % Path(path).parent.name)
        rest.write_text("".join(blocks[1:]))
    return leaf, rest


def cert_text(path):
    r = subprocess.run([OPENSSL, "x509", "-noout", "-text", "-in", str(path)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if r.returncode != 0:
        raise AssertionError("openssl x509 %s: %s" % (path, r.stderr.decode()))
    return r.stdout.decode()


def tunnel_closed_for(proc, local_port, timeout=EVENT_TIMEOUT, since=0, tunnel=None):
    """Wait for the tunnel_closed line of the connection whose accepted
    socket's remote port is LOCAL_PORT."""
    crit = {"remote": remote_port_is(local_port)}
    if tunnel:
        crit["tunnel"] = tunnel
    return proc.wait_event("tunnel_closed", timeout=timeout, since=since, **crit)
