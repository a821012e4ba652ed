"""Fixtures for peerproxy's end-to-end tests.

Run:  /usr/bin/python3 -m pytest -q test/integration
Env:  PEERPROXY_BIN  (default build/peerproxy)
      PEERPROXY_PKI  (default test/pki/pki)

The PKI trees are generated once per test session (per xdist worker) into
a temporary directory that is removed at the end.
"""

import concurrent.futures
import faulthandler
import os
import resource
import shutil
import sys
import tempfile
import threading

import pytest

import harness
from harness import NodesPKI, Server


def pytest_configure(config):
    # 500 concurrent tunnels need ~1000 descriptors in each proxy and in
    # this process (client + echo sides); children inherit the limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    config.addinivalue_line("markers", "slow: a test that moves a lot of data")


# --------------------------------------------------------------------------
# PKI trees: built lazily, once, shared by fixtures and by collection-time
# parametrisation over the forged vectors.

class _PkiCache:
    """The three trees are generated concurrently in threads on first use
    (the generator mostly waits on `openssl` processes)."""

    KINDS = ("nodes", "rsa", "generic")

    def __init__(self):
        self.root = None
        self.futures = {}
        self.pool = None

    def get(self, kind):
        if self.pool is None:
            self.root = tempfile.mkdtemp(prefix="peerproxy-pki-")
            self.pool = concurrent.futures.ThreadPoolExecutor(len(self.KINDS))
            for k in self.KINDS:
                self.futures[k] = self.pool.submit(self._build, k)
        value = self.futures[kind].result(timeout=600)
        if isinstance(value, Exception):
            raise value
        return value

    def _build(self, kind):
        out = os.path.join(self.root, kind)
        try:
            if kind == "nodes":
                harness.run_pki(["nodes", out, "--nodes", "3", "--key", "p256", "--forged"])
                value = NodesPKI(out)
            elif kind == "rsa":
                harness.run_pki(["nodes", out, "--nodes", "2", "--key", "rsa3072"])
                value = NodesPKI(out)
            elif kind == "generic":
                harness.run_pki(["generic", out])
                value = GenericPKI(out)
            else:
                raise KeyError(kind)
        except Exception as e:
            value = RuntimeError("PKI generation (%s) failed: %s" % (kind, e))
        return value

    def cleanup(self):
        if self.pool:
            self.pool.shutdown(wait=True)
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)


class GenericPKI:
    """OUT of `pki generic OUT`: x509-mode material."""

    def __init__(self, out):
        from pathlib import Path
        self.out = Path(out)

    def __getattr__(self, name):
        # generic.client_crt -> OUT/client.crt ; generic.nc_good_chain -> OUT/nc-good-chain.pem
        base = name.replace("_", "-")
        for suffix, ext in (("-crt", ".crt"), ("-key", ".key"), ("-chain", "-chain.pem"), ("-pem", ".pem")):
            if base.endswith(suffix):
                return self.out / (base[: -len(suffix)] + ext)
        raise AttributeError(name)

    def path(self, filename):
        p = self.out / filename
        if not p.exists():
            raise AssertionError("generic PKI has no %s (files: %s)" % (
                filename, sorted(x.name for x in self.out.iterdir())))
        return p


_PKI = _PkiCache()


def pytest_unconfigure(config):
    _PKI.cleanup()


def _vector_params(side):
    try:
        tree = _PKI.get("nodes")
    except Exception as e:
        # one test that fails with the reason, rather than zero tests
        return [pytest.param(("error", str(e)), id="pki-unavailable")]
    vecs = [v for v in tree.vectors if v.get("side", "client") == side]
    if not vecs:
        return [pytest.param(("error", "no %s-side vectors in forged/vectors.json" % side),
                             id="no-%s-vectors" % side)]
    return [pytest.param(("ok", v["name"]), id=v["name"]) for v in vecs]


def pytest_generate_tests(metafunc):
    for side in ("client", "server"):
        fixture = "%s_vector" % side
        if fixture in metafunc.fixturenames:
            metafunc.parametrize(fixture, _vector_params(side), indirect=True)


def _vector_fixture(request):
    status, value = request.param
    if status == "error":
        pytest.fail(value)
    tree = _PKI.get("nodes")
    return tree.vector(value)


@pytest.fixture
def client_vector(request):
    return _vector_fixture(request)


@pytest.fixture
def server_vector(request):
    return _vector_fixture(request)


@pytest.fixture(scope="session")
def pki():
    """3 nodes (node0..node2), P-256 keys, every pair cross-signed, with the
    forged vectors."""
    try:
        return _PKI.get("nodes")
    except Exception as e:
        pytest.fail(str(e))


@pytest.fixture(scope="session")
def pki_rsa():
    """2 nodes with RSA-3072 keys: the production profile."""
    try:
        return _PKI.get("rsa")
    except Exception as e:
        pytest.fail(str(e))


@pytest.fixture(scope="session")
def generic_pki():
    try:
        return _PKI.get("generic")
    except Exception as e:
        pytest.fail(str(e))


# --------------------------------------------------------------------------
# the binary, processes and servers

@pytest.fixture(scope="session", autouse=True)
def proxy_binary():
    if not os.access(harness.PROXY_BIN, os.X_OK):
        pytest.fail("peerproxy binary %s is missing: build it (cmake -B build && cmake --build build) "
                    "or set PEERPROXY_BIN" % harness.PROXY_BIN)
    return harness.PROXY_BIN


TEST_TIMEOUT = float(os.environ.get("PEERPROXY_TEST_TIMEOUT", "150"))


@pytest.fixture(autouse=True)
def _watchdog(request):
    """Last-resort bound on a test's time: every wait in the suite has its
    own deadline, but should one hang anyway, dump all stacks and end the
    run (children die with us through PR_SET_PDEATHSIG)."""
    def expire():
        capman = request.config.pluginmanager.getplugin("capturemanager")
        if capman is not None:
            try:
                capman.suspend_global_capture(in_=True)  # give fd 2 back
            except Exception:
                pass
        sys.__stderr__.write("\n*** %s exceeded %gs: dumping stacks, aborting the run\n"
                             % (request.node.nodeid, TEST_TIMEOUT))
        faulthandler.dump_traceback(file=sys.__stderr__)
        if _PKI.root:
            shutil.rmtree(_PKI.root, ignore_errors=True)
        os._exit(3)
    timer = threading.Timer(TEST_TIMEOUT, expire)
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()


@pytest.fixture(autouse=True)
def _no_sanitizer_reports():
    """A test fails if a proxy it ran reported a sanitizer error (a race,
    a leak at exit, undefined behaviour), even one the test's own checks
    could not see.  Torn down after every other fixture of the test, so
    every proxy has been stopped (and has written its exit reports)."""
    harness.take_proxy_procs()
    yield
    found = []
    for p in harness.take_proxy_procs():
        p.stop()
        if p.sanitizer_reports():
            found.append(p)
    if found:
        pytest.fail("sanitizer reports:\n" + "\n".join(p.describe() for p in found),
                    pytrace=False)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    node = request.node
    return any(getattr(node, "rep_" + w, None) is not None and getattr(node, "rep_" + w).failed
               for w in ("setup", "call"))


@pytest.fixture
def procs(request):
    """A list of harness.Proc: each is stopped at teardown, and its log is
    printed when the test failed."""
    registry = []
    yield registry
    for p in reversed(registry):
        p.stop()
    if _failed(request):
        for p in registry:
            sys.stderr.write("\n===== %s\n" % p.describe())


@pytest.fixture
def proxy(procs):
    """proxy(*args, name=None, ready_timeout=...) -> a ready peerproxy Proc."""
    def start(*args, name=None, ready_timeout=harness.READY_TIMEOUT):
        return harness.start_proxy(list(args), name=name, ready_timeout=ready_timeout, registry=procs)
    return start


@pytest.fixture
def server():
    """server(handler, kind="tcp"|"tcp6"|"unix") -> a running harness.Server."""
    made = []

    def make(handler=harness.echo_handler, kind="tcp", **kw):
        s = Server(handler, kind=kind, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


@pytest.fixture
def echo(server):
    return server(harness.echo_handler)


@pytest.fixture
def tmpdir_short():
    d = harness.short_tmpdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Link:
    """outbound(A -> B) -> inbound(B) -> backend, all on loopback."""

    def __init__(self, outbound, inbound, backend, out_addr, in_addr, a, b):
        self.outbound = outbound
        self.inbound = inbound
        self.backend = backend
        self.out_addr = out_addr
        self.in_addr = in_addr
        self.a = a
        self.b = b


def tcp_addr(port, v6=False):
    return "[::1]:%d" % port if v6 else "127.0.0.1:%d" % port


@pytest.fixture
def link(proxy, server, pki):
    """link(a=0, b=1, backend=None, tree=pki, out_listen=None, in_listen=None,
    in_target=None, out_extra=(), in_extra=()) -> Link."""
    def make(a=0, b=1, backend=None, tree=None, out_listen=None, in_listen=None,
             in_target=None, out_target=None, out_extra=(), in_extra=()):
        tree = tree or pki
        na, nb = tree[a], tree[b]
        if backend is None and in_target is None:
            backend = server(harness.echo_handler)
        in_listen = in_listen or tcp_addr(harness.free_port())
        out_listen = out_listen or tcp_addr(harness.free_port())
        inbound = proxy("inbound", "--listen", in_listen,
                        "--target", in_target or backend.target,
                        *tree.inbound_args(nb), *in_extra, name="inbound(%s)" % nb.name)
        outbound = proxy("outbound", "--listen", out_listen, "--target", out_target or in_listen,
                         *tree.outbound_args(na, nb), *out_extra, name="outbound(%s->%s)" % (na.name, nb.name))
        return Link(outbound, inbound, backend, out_listen, in_listen, na, nb)
    return make
