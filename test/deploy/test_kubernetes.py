"""deploy/kubernetes: both variants build with `kubectl kustomize`, and the
rendered objects pass a client-side check of what the deployment relies on
(kinds and API versions, field names, native sidecar shape, probes on the
admin port, security context, resources, Service port, ConfigMap wiring),
and the ConfigMap's config.yaml passes `peerproxy check`.

kubectl is Debian's kubernetes-client (1.20, whose kustomize predates
native sidecars but builds them, as they are plain fields) or any newer one.
"""

import re
import shutil
import sys

import pytest
import yaml

from conftest import DEPLOY, PKI_TOOL, run

K8S = DEPLOY / "kubernetes"
VARIANTS = ["base", "legacy-sidecar"]

API_VERSIONS = {"Deployment": "apps/v1", "Service": "v1", "ConfigMap": "v1",
                "PersistentVolumeClaim": "v1"}

# Field names the checked objects may use (a typo such as "readinesProbe"
# would be silently ignored by a lenient client and the API server alike).
CONTAINER_KEYS = {"name", "image", "imagePullPolicy", "command", "args", "env", "envFrom",
                  "ports", "resources", "securityContext", "volumeMounts", "startupProbe",
                  "readinessProbe", "livenessProbe", "lifecycle", "restartPolicy",
                  "workingDir", "terminationMessagePolicy"}
POD_SPEC_KEYS = {"initContainers", "containers", "volumes", "securityContext",
                 "terminationGracePeriodSeconds", "automountServiceAccountToken",
                 "enableServiceLinks", "serviceAccountName", "nodeSelector", "affinity",
                 "tolerations", "shareProcessNamespace"}
SECURITY_KEYS = {"runAsNonRoot", "runAsUser", "runAsGroup", "allowPrivilegeEscalation",
                 "readOnlyRootFilesystem", "privileged", "capabilities", "seccompProfile"}
PROBE_KEYS = {"httpGet", "periodSeconds", "failureThreshold", "timeoutSeconds",
              "initialDelaySeconds", "successThreshold"}


def _kubectl():
    return shutil.which("kubectl")


pytestmark = pytest.mark.skipif(_kubectl() is None,
                                reason="kubectl not installed (test/run installs kubernetes-client)")


@pytest.fixture(scope="module", params=VARIANTS)
def rendered(request):
    r = run([_kubectl(), "kustomize", K8S / request.param])
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    return request.param, docs, by_kind


def _one(by_kind, kind):
    assert len(by_kind.get(kind, [])) == 1, "expected one %s, got %s" % (kind, by_kind.keys())
    return by_kind[kind][0]


def _pod(by_kind):
    return _one(by_kind, "Deployment")["spec"]["template"]


def _containers(spec):
    return {c["name"]: c for c in spec.get("initContainers", []) + spec["containers"]}


def _config(by_kind):
    cm = _one(by_kind, "ConfigMap")
    return cm, yaml.safe_load(cm["data"]["config.yaml"])


def _port_of(container, ref):
    if isinstance(ref, int):
        return ref
    for p in container.get("ports", []):
        if p.get("name") == ref:
            return p["containerPort"]
    raise AssertionError("no port named %r in %s" % (ref, container["name"]))


def _listen_port(addr):
    return int(addr.rsplit(":", 1)[1])


def _quantity(q):
    units = {"m": 1e-3, "": 1, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30,
             "k": 1e3, "M": 1e6, "G": 1e9}
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(q))
    assert m and m.group(2) in units, "bad quantity %r" % q
    return float(m.group(1)) * units[m.group(2)]


def test_kinds_api_versions_and_names(rendered):
    _, docs, by_kind = rendered
    assert set(by_kind) == set(API_VERSIONS), by_kind.keys()
    for d in docs:
        assert d["apiVersion"] == API_VERSIONS[d["kind"]], d
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", d["metadata"]["name"]), d["metadata"]


def test_field_names_are_known(rendered):
    _, _, by_kind = rendered
    spec = _pod(by_kind)["spec"]
    assert set(spec) <= POD_SPEC_KEYS, set(spec) - POD_SPEC_KEYS
    for c in _containers(spec).values():
        assert set(c) <= CONTAINER_KEYS, (c["name"], set(c) - CONTAINER_KEYS)
        assert set(c.get("securityContext", {})) <= SECURITY_KEYS, c["name"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe in c:
                assert set(c[probe]) <= PROBE_KEYS, (c["name"], probe)


def test_sidecar_shape(rendered):
    variant, _, by_kind = rendered
    deploy = _one(by_kind, "Deployment")
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    for k, v in deploy["spec"]["selector"]["matchLabels"].items():
        assert labels.get(k) == v
    spec = deploy["spec"]["template"]["spec"]
    assert all("restartPolicy" not in c for c in spec["containers"])
    if variant == "base":
        (proxy,) = spec["initContainers"]
        assert proxy["name"] == "peerproxy" and proxy["restartPolicy"] == "Always"
        assert [c["name"] for c in spec["containers"]] == ["app"]
        assert proxy["startupProbe"]["httpGet"]["path"] == "/readyz"
    else:
        assert "initContainers" not in spec
        assert [c["name"] for c in spec["containers"]] == ["peerproxy", "app"]
        script = " ".join(spec["containers"][1]["command"])
        assert "/readyz" in script and "/quitquitquit" in script and "--post-data" in script
    proxy = _containers(spec)["peerproxy"]
    assert proxy["image"].split(":")[0] == "peerproxy"       # built from deploy/Dockerfile
    assert proxy["args"] == ["run", "--config", "/etc/peerproxy/config.yaml"]


def test_probes_reach_the_admin_listener(rendered):
    _, _, by_kind = rendered
    spec = _pod(by_kind)["spec"]
    proxy = _containers(spec)["peerproxy"]
    _, config = _config(by_kind)
    admin = config["admin"]["listen"]
    assert admin.startswith("0.0.0.0:"), "probes come from the kubelet, not loopback"
    assert proxy["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert proxy["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe in proxy:
            assert _port_of(proxy, proxy[probe]["httpGet"]["port"]) == _listen_port(admin)
    ann = _pod(by_kind)["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert ann["prometheus.io/path"] == "/metrics"
    assert int(ann["prometheus.io/port"]) == _listen_port(admin)


def test_security_context(rendered):
    _, _, by_kind = rendered
    spec = _pod(by_kind)["spec"]
    pod_sc = spec["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] == 65532
    assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault"
    for c in _containers(spec).values():
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True, c["name"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
        assert sc["seccompProfile"]["type"] == "RuntimeDefault", c["name"]
    assert spec["automountServiceAccountToken"] is False


def test_resources_requests_and_limits(rendered):
    _, _, by_kind = rendered
    proxy = _containers(_pod(by_kind)["spec"])["peerproxy"]
    res = proxy["resources"]
    for what in ("cpu", "memory"):
        assert _quantity(res["requests"][what]) <= _quantity(res["limits"][what]), what
    _, config = _config(by_kind)
    # One worker per CPU of the limit, and the connection cap fits in memory
    # (4 MiB at start, up to 150 KiB per busy tunnel: deployment.yaml).
    assert config["workers"] <= max(1, int(_quantity(res["limits"]["cpu"])))
    worst = 4 * 2 ** 20 + config["limits"]["max_connections"] * 150 * 2 ** 10
    assert worst < _quantity(res["limits"]["memory"])


def test_volumes_and_paths_line_up(rendered):
    _, _, by_kind = rendered
    spec = _pod(by_kind)["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    cm, config = _config(by_kind)
    proxy, app = _containers(spec)["peerproxy"], _containers(spec)["app"]
    mounts = {m["mountPath"]: m for m in proxy["volumeMounts"]}

    def volume_at(path):
        best = max((p for p in mounts if path == p or path.startswith(p + "/")), key=len)
        assert "subPath" not in mounts[best], "subPath mounts never see updates"
        return volumes[mounts[best]["name"]]

    conf_vol = volume_at("/etc/peerproxy/config.yaml")
    assert conf_vol["configMap"]["name"] == cm["metadata"]["name"]   # hash suffix followed
    nd = config["nodedata"]
    for key in ("cert", "key"):
        assert "secret" in volume_at(nd[key]), key
    pvc = _one(by_kind, "PersistentVolumeClaim")
    assert volume_at(nd["path"])["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    for m in proxy["volumeMounts"]:
        v = volumes[m["name"]]
        if "configMap" in v or "secret" in v or "persistentVolumeClaim" in v:
            assert m.get("readOnly") is True, m
    sockets = volume_at(nd["outbound"]["socket_dir"] + "/x.sock")
    assert "emptyDir" in sockets
    assert any(m["name"] == [n for n, v in volumes.items() if v is sockets][0]
               for m in app["volumeMounts"]), "the app must see the peer sockets"
    # Draining ends before the kubelet's SIGKILL.
    drain = int(config["limits"]["drain_timeout"].rstrip("s"))
    assert spec["terminationGracePeriodSeconds"] > drain


def test_service_matches_the_inbound_port(rendered):
    _, _, by_kind = rendered
    svc = _one(by_kind, "Service")
    pod = _pod(by_kind)
    for k, v in svc["spec"]["selector"].items():
        assert pod["metadata"]["labels"].get(k) == v
    proxy = _containers(pod["spec"])["peerproxy"]
    _, config = _config(by_kind)
    (port,) = svc["spec"]["ports"]
    inbound = _listen_port(config["nodedata"]["inbound"]["listen"])
    assert _port_of(proxy, port["targetPort"]) == inbound
    assert port["protocol"] == "TCP"
    # The admin port is not published through the Service.
    assert _listen_port(config["admin"]["listen"]) not in (port["port"], inbound)


def test_configmap_config_passes_peerproxy_check(rendered, proxy_bin, tmp_path):
    """The shipped config.yaml, with its paths pointed at a tree from the
    PKI tool, is valid for the binary."""
    _, _, by_kind = rendered
    _, config = _config(by_kind)
    out = tmp_path / "pki"
    run([sys.executable, PKI_TOOL, "nodes", out, "--nodes", "2"])
    node = out / "node0"
    nd = config["nodedata"]
    nd["path"], nd["cert"], nd["key"] = str(node), str(node / "server.crt"), str(node / "server.key")
    nd["outbound"]["socket_dir"] = str(tmp_path / "peers")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    r = run([proxy_bin, "check", "--config", path], check=False)
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout + r.stderr
