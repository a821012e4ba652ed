"""deploy/compose without a container engine: the file parses, names only
images built from deploy/Dockerfile (by stage) and paths that exist here,
keeps each app on its node's network alone, and what the containers would
run works here: the pki service's command makes a tree whose addresses are
the proxies', and each proxy's config passes `peerproxy check` on it."""

import re
import shlex
import sys

import pytest
import yaml

from conftest import DEPLOY, PKI_TOOL, REPO, run

COMPOSE_DIR = DEPLOY / "compose"
COMPOSE = COMPOSE_DIR / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


def _stages():
    text = (DEPLOY / "Dockerfile").read_text()
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", text, flags=re.M | re.I))


def _volumes(service):
    """(source, target, read_only) of each short-syntax volume entry."""
    out = []
    for v in service.get("volumes", []):
        parts = v.split(":")
        assert len(parts) in (2, 3), v
        out.append((parts[0], parts[1], len(parts) == 3 and parts[2] == "ro"))
    return out


def _is_bind(source):
    return source.startswith(("./", "../", "/"))


def _role(name):
    return "proxy" if name.startswith("proxy-") else "app" if name.startswith("app-") else name


def test_top_level(compose):
    assert set(k for k in compose if not k.startswith("x-")) <= {"name", "services",
                                                                "volumes", "networks"}
    assert {"pki", "proxy-a", "proxy-b", "app-a", "app-b"} <= set(compose["services"])


def test_images_are_built_from_the_dockerfile_here(compose):
    stages = _stages()
    assert {"build", "tools", "runtime"} <= stages, stages
    built = {}
    for name, svc in compose["services"].items():
        b = svc.get("build")
        if b is None:
            continue
        context = (COMPOSE_DIR / b["context"]).resolve()
        assert context == REPO, (name, context)
        assert (context / b["dockerfile"]).resolve() == (DEPLOY / "Dockerfile").resolve()
        assert b["target"] in stages, (name, b["target"])
        if "image" in svc:
            assert built.setdefault(svc["image"], b["target"]) == b["target"], name
    for name, svc in compose["services"].items():
        image = svc.get("image")
        assert image, "%s: no image name" % name
        # Bare local names only: nothing to pull from any registry.
        assert "/" not in image and image in built, (name, image)
    assert built["peerproxy:local"] == "runtime"


def test_mounts_exist_and_volumes_are_declared(compose):
    declared = set(compose.get("volumes") or {})
    for name, svc in compose["services"].items():
        for source, target, _ in _volumes(svc):
            assert target.startswith("/"), (name, target)
            if _is_bind(source):
                path = (COMPOSE_DIR / source).resolve()
                assert path.exists(), (name, source)
                assert REPO in path.parents, (name, source)
            else:
                assert source in declared, (name, source)


def test_apps_reach_each_other_only_through_their_proxies(compose):
    nets = compose["networks"]
    svcs = compose["services"]
    for name, svc in svcs.items():
        for n in svc.get("networks", []):
            assert n in nets, (name, n)
    for node in ("a", "b"):
        assert nets["node-" + node].get("internal") is True
        assert svcs["app-" + node]["networks"] == ["node-" + node]
        assert set(svcs["proxy-" + node]["networks"]) == {"node-" + node, "mesh"}
        assert "ports" not in svcs["app-" + node]
        proxy = svcs["proxy-" + node]
        assert proxy["depends_on"]["pki"]["condition"] == "service_completed_successfully"
        assert svcs["app-" + node]["depends_on"]["proxy-" + node]["condition"] == "service_healthy"
        assert "/readyz" in " ".join(proxy["healthcheck"]["test"])
        assert proxy["read_only"] is True and proxy["cap_drop"] == ["ALL"]
        assert proxy["user"] == "65532:65532"


def _proxy_config(svc):
    for source, target, ro in _volumes(svc):
        if target == "/etc/peerproxy/config.yaml":
            assert ro and _is_bind(source)
            return yaml.safe_load((COMPOSE_DIR / source).read_text())
    raise AssertionError("no config mounted")


def test_pki_service_and_proxy_configs_work_here(compose, proxy_bin, tmp_path):
    svcs = compose["services"]
    (script,) = svcs["pki"]["command"]
    argv = shlex.split(script.split("||", 1)[1])
    assert argv[:2] == ["peerproxy-pki", "nodes"]
    local = [a.replace("/pki/", str(tmp_path) + "/") for a in argv[1:]]
    run([sys.executable, PKI_TOOL] + local)
    out = tmp_path / "nodes"
    for i, node in enumerate(("a", "b")):
        conf = _proxy_config(svcs["proxy-" + node])
        nd = conf["nodedata"]
        # The tree's stomp.toml points peers at this proxy's inbound port.
        toml = (out / ("node%d" % i) / "nodeinfo" / "stomp.toml").read_text()
        assert toml.strip() == 'servers = ["proxy-%s:%s"]' % (
            node, nd["inbound"]["listen"].rsplit(":", 1)[1]), toml
        # The inbound's target is this node's app; sockets go to the volume
        # the app mounts; the app calls as this node.
        app = svcs["app-" + node]
        assert nd["inbound"]["target"] == "app-%s:8080" % node
        sockets = [s for s, t, _ in _volumes(svcs["proxy-" + node]) if t == "/run/peerproxy"]
        assert sockets and (sockets[0], "/run/peerproxy", False) in _volumes(app)
        assert nd["outbound"]["socket_dir"].startswith("/run/peerproxy/")
        assert app["command"][app["command"].index("--node") + 1] == "node%d" % i
        assert nd["path"] == "/pki/nodes/node%d" % i
        # Valid for the binary, on the tree the pki command made.
        for key in ("path", "cert", "key"):
            nd[key] = nd[key].replace("/pki/", str(tmp_path) + "/")
        nd["outbound"]["socket_dir"] = str(tmp_path / ("sock-" + node))
        nd["inbound"]["target"] = "127.0.0.1:8080"
        path = tmp_path / ("proxy-%s.yaml" % node)
        path.write_text(yaml.safe_dump(conf))
        r = run([proxy_bin, "check", "--config", path], check=False)
        assert r.returncode == 0, r.stderr
