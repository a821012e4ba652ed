"""deploy/Dockerfile, built for real with podman from a local base image.

Opt-in: PEERPROXY_TEST_PODMAN=1.  The build compiles BoringSSL inside the
image (several minutes on 2 cores, more than CI's budget for it), and no
registry is reachable here, so the base is made locally: debootstrap
--variant=minbase bookworm, imported with `podman import` (reused while the
image exists; PEERPROXY_PODMAN_BASE names another).  Without podman, or
where podman cannot run a container, the test says why and skips.

It also runs deploy/compose/docker-compose.yml service by service with
`podman run` (no compose tool is needed): both apps must get answers from
each other through the proxies, and app A must have no route to node B.

Needs: podman, debootstrap, runc (the sandbox this was written in refuses
crun's cgroup setup and the default RLIMIT_NOFILE; the probe below finds a
combination that works and uses it for the build too).
"""

import glob
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import DEPLOY, REPO, run

BASE = os.environ.get("PEERPROXY_PODMAN_BASE", "localhost/peerproxy-base:12")
IMAGE = "localhost/peerproxy:test"

pytestmark = pytest.mark.skipif(
    os.environ.get("PEERPROXY_TEST_PODMAN") != "1",
    reason="image build is opt-in (PEERPROXY_TEST_PODMAN=1): it compiles BoringSSL "
           "inside the image, several minutes on 2 cores")


def _mirror():
    """The Debian mirror this machine's apt already uses (never a name
    written into the repository)."""
    for path in glob.glob("/etc/apt/sources.list.d/*.sources"):
        text = open(path).read()
        for stanza in text.split("\n\n"):
            if re.search(r"^Suites:.*\bbookworm\b", stanza, re.M):
                m = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                if m:
                    return m.group(1)
    if os.path.exists("/etc/apt/sources.list"):
        for line in open("/etc/apt/sources.list"):
            parts = line.split()
            if parts[:1] == ["deb"] and "bookworm" in parts:
                return [p for p in parts[1:] if "://" in p][0]
    return None


def _have_image(name):
    return subprocess.run(["podman", "image", "exists", name]).returncode == 0


def _make_base():
    if _have_image(BASE):
        return
    if not shutil.which("debootstrap"):
        pytest.skip("no local base image %s and no debootstrap to make one" % BASE)
    mirror = _mirror()
    if not mirror:
        pytest.skip("no bookworm entry in apt's sources to debootstrap from")
    with tempfile.TemporaryDirectory(prefix="pp-base-", dir="/var/tmp") as root:
        r = run(["debootstrap", "--variant=minbase", "bookworm", root, mirror],
                check=False, timeout=900)
        if r.returncode != 0:
            pytest.skip("debootstrap failed: " + r.stderr[-500:])
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(["podman", "import", "-", BASE], stdin=tar.stdout,
                             capture_output=True, text=True)
        tar.wait()
        assert imp.returncode == 0, imp.stderr


# Global podman options, then per-container options.
CANDIDATES = [([], []),
              ([], ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]),
              (["--runtime", "runc"], ["--ulimit", "nofile=1024:1024",
                                       "--ulimit", "nproc=1024:1024"])]


@pytest.fixture(scope="module")
def podman():
    if not shutil.which("podman"):
        pytest.skip("podman is not installed")
    _make_base()
    errors = []
    for glob_opts, ctr_opts in CANDIDATES:
        r = run(["podman"] + glob_opts + ["run", "--rm", "--network", "none"] + ctr_opts +
                [BASE, "true"], check=False)
        if r.returncode == 0:
            return glob_opts, ctr_opts
        errors.append(r.stderr.strip().splitlines()[-1:])
    pytest.skip("podman cannot run a container here: %s" % errors)


@pytest.fixture(scope="module")
def image(podman):
    glob_opts, ctr_opts = podman
    r = run(["podman"] + glob_opts + ["build", "--network", "host"] + ctr_opts +
            ["--build-arg", "BASE_IMAGE=" + BASE, "--target", "runtime",
             "-f", DEPLOY / "Dockerfile", "-t", IMAGE, REPO], check=False, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return glob_opts, ctr_opts


def _run_in(image, args, extra=()):
    glob_opts, ctr_opts = image
    return run(["podman"] + glob_opts + ["run", "--rm", "--network", "none", "--read-only"] +
               ctr_opts + list(extra) + [IMAGE] + list(args), check=False)


def test_version_runs_in_the_image(image):
    r = _run_in(image, ["version"])
    assert r.returncode == 0, r.stderr
    assert "peerproxy" in r.stdout and "source" in r.stdout, r.stdout


def test_image_configuration():
    (info,) = json.loads(run(["podman", "image", "inspect", IMAGE]).stdout)
    cfg = info["Config"]
    assert cfg["User"] == "65532:65532"
    assert cfg["Entrypoint"] == ["peerproxy"]
    assert cfg["Cmd"] == ["run", "--config", "/etc/peerproxy/config.yaml"]
    assert {"9901/tcp", "1234/tcp"} <= set(cfg["ExposedPorts"])


def test_runtime_holds_no_toolchain_or_setuid(image):
    r = _run_in(image, ["-c", "for t in cc gcc clang go cmake python3 apt-get; do "
                              "command -v $t; done; find / -xdev -type f -perm /6000"],
                extra=["--entrypoint", "/bin/sh", "--user", "0"])
    assert r.returncode in (0, 1) and r.stdout.strip() == "", r.stdout + r.stderr


def test_read_only_root_leaves_the_socket_directory_writable(image):
    r = _run_in(image, ["-c", "id -u; touch /run/peerproxy/probe.sock && echo socket-dir-ok; "
                              "touch /probe 2>/dev/null || echo root-read-only"],
                extra=["--entrypoint", "/bin/sh"])
    assert r.stdout.split() == ["65532", "socket-dir-ok", "root-read-only"], r.stdout + r.stderr


def test_checks_a_config_with_a_read_only_root(image, two_nodes, tmp_path):
    conf = tmp_path / "config.yaml"
    conf.write_text("""
nodedata:
  path: /pki/node0
  cert: /pki/node0/server.crt
  key: /pki/node0/server.key
  inbound: {listen: 0.0.0.0:1234, target: 127.0.0.1:8080}
  outbound: {socket_dir: /run/peerproxy/peers}
""")
    # The tree's keys are 0600 root: run as root for this read-only check.
    r = _run_in(image, ["check", "--config", "/etc/peerproxy/config.yaml"],
                extra=["--user", "0", "-v", "%s:/etc/peerproxy/config.yaml:ro" % conf,
                       "-v", "%s:/pki:ro" % two_nodes])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "configuration OK" in r.stdout + r.stderr


# ---------------------------------------------------------------------------
# deploy/compose/docker-compose.yml, run by podman without a compose tool:
# each service becomes a `podman run` with the file's image, user, flags,
# volumes and networks (service names as network aliases), in dependency
# order, with readiness taken from the proxies' event=ready log line.

COMPOSE_DIR = DEPLOY / "compose"


@pytest.fixture(scope="module")
def tools_image(image):
    glob_opts, ctr_opts = image
    r = run(["podman"] + glob_opts + ["build", "--network", "host"] + ctr_opts +
            ["--build-arg", "BASE_IMAGE=" + BASE, "--target", "tools",
             "-f", DEPLOY / "Dockerfile", "-t", "localhost/peerproxy-tools:local", REPO],
            check=False, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    run(["podman", "tag", IMAGE, "localhost/peerproxy:local"])
    return image


class ComposeRun:
    def __init__(self, opts, compose, tmp):
        self.glob_opts, self.ctr_opts = opts
        self.compose, self.tmp = compose, tmp
        self.prefix = "pp7t%d" % os.getpid()
        self.containers, self.networks, self.volumes = [], [], []

    def name(self, thing):
        return "%s-%s" % (self.prefix, thing)

    def setup(self):
        for net, spec in self.compose["networks"].items():
            args = ["--internal"] if (spec or {}).get("internal") else []
            run(["podman", "network", "create"] + args + [self.name(net)])
            self.networks.append(self.name(net))
        for vol in self.compose["volumes"]:
            run(["podman", "volume", "create", self.name(vol)])
            self.volumes.append(self.name(vol))

    def argv(self, svc_name, detach=True, replace=None):
        svc = self.compose["services"][svc_name]
        a = ["podman"] + self.glob_opts + ["run"] + self.ctr_opts
        a += ["-d", "--name", self.name(svc_name)] if detach else ["--rm"]
        a += ["--user", svc["user"]]
        if svc.get("read_only"):
            a.append("--read-only")
        for cap in svc.get("cap_drop", []):
            a += ["--cap-drop", cap]
        for opt in svc.get("security_opt", []):
            a += ["--security-opt", opt]
        for src, dst, *mode in (v.split(":") for v in svc.get("volumes", [])):
            if src.startswith("."):
                src = str((replace or {}).get(src) or (COMPOSE_DIR / src).resolve())
            else:
                src = self.name(src)
            a += ["-v", ":".join([src, dst] + mode)]
        nets = svc.get("networks", [])
        for n in nets or ["none"]:
            a += ["--network", "%s:alias=%s" % (self.name(n), svc_name) if nets else n]
        if "entrypoint" in svc:
            a += ["--entrypoint", json.dumps(svc["entrypoint"])]
        a.append("localhost/" + svc["image"])
        a += svc.get("command", [])
        return a

    def start(self, svc_name, **kw):
        r = run(self.argv(svc_name, **kw), check=False)
        assert r.returncode == 0, (svc_name, r.stderr)
        self.containers.append(self.name(svc_name))

    def logs(self, svc_name):
        import harness
        return harness.Proc(["podman", "logs", "-f", self.name(svc_name)],
                            name="logs " + svc_name)

    def close(self):
        for c in self.containers:
            run(["podman", "rm", "-f", "-t", "2", c], check=False)
        for n in self.networks:
            run(["podman", "network", "rm", "-f", n], check=False)
        for v in self.volumes:
            run(["podman", "volume", "rm", "-f", v], check=False)


def test_compose_topology_in_podman(tools_image, proxy_bin, tmp_path):
    import yaml
    compose = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
    c = ComposeRun(tools_image, compose, tmp_path)
    procs = []
    try:
        c.setup()
        r = run(c.argv("pki", detach=False), check=False)
        assert r.returncode == 0, r.stderr
        replace = {}
        proxy_logs = {}
        for node in ("a", "b"):
            c.start("proxy-" + node, replace=replace)
            proxy_logs[node] = c.logs("proxy-" + node)
            procs.append(proxy_logs[node])
            proxy_logs[node].wait_event("ready", timeout=30)
        for node in ("a", "b"):
            c.start("app-" + node)
        app_a, app_b = c.logs("app-a"), c.logs("app-b")
        procs += [app_a, app_b]
        app_a.wait_stdout(lambda l: "app-b got hello from app-a" in l, timeout=30)
        app_b.wait_stdout(lambda l: "app-a got hello from app-b" in l, timeout=30)
        rec = proxy_logs["b"].wait_event("tunnel_closed", tunnel="nodedata", timeout=30)
        nodes = json.loads(run(c.argv("pki", detach=False)[:-1] +
                               ["cat /pki/nodes/nodes.json"]).stdout)
        assert rec["peer"] == nodes[0]["id"], rec
        # App A has no route to app B or to B's proxy: only its own proxy.
        probe = run(["podman", "exec", c.name("app-a"), "python3", "-c",
                     "import socket\n"
                     "for h, p in (('app-b', 8080), ('proxy-b', 1234)):\n"
                     "    try:\n"
                     "        socket.create_connection((h, p), timeout=3).close(); print('open')\n"
                     "    except OSError: print('closed')\n"])
        assert probe.stdout.split() == ["closed", "closed"], probe.stdout
    finally:
        for p in procs:
            p.stop()
        c.close()
