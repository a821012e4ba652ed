"""deploy/Dockerfile, built for real with podman from a local base image.

Opt-in: PEERPROXY_TEST_PODMAN=1.  The build compiles BoringSSL inside the
image (several minutes on 2 cores, more than CI's budget for it), and no
registry is reachable here, so the base is made locally: debootstrap
--variant=minbase bookworm, imported with `podman import` (reused while the
image exists; PEERPROXY_PODMAN_BASE names another).  Without podman, or
where podman cannot run a container, the test says why and skips.

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
