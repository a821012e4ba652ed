"""Command-line contract: help and version succeed; every kind of bad usage
or bad configuration exits 2 before binding anything, with a message naming
the offending flag or file."""

import os
import re
import subprocess
import socket

import pytest

import harness
from harness import run_cli


def _assert_exit(rc, out, err, code, *names):
    shown = "rc=%r\n--- stdout ---\n%s\n--- stderr ---\n%s" % (rc, out, err)
    assert rc is not None, "process did not exit (it probably started serving):\n" + shown
    assert rc == code, "expected exit %d, got %r:\n%s" % (code, rc, shown)
    if names:
        assert any(str(n) in err for n in names), \
            "stderr should name one of %r:\n%s" % ([str(n) for n in names], shown)
    if code != 0:
        assert "event=ready" not in err, shown


@pytest.mark.parametrize("args,must_mention", [
    (["--help"], ["inbound", "outbound", "verify"]),
    (["inbound", "--help"], ["--listen", "--target", "--allow-peer", "--tls-min"]),
    (["outbound", "--help"], ["--listen", "--target", "--chain", "--peer", "--server-name"]),
    (["verify", "--help"], ["--ca", "--cert", "--chain", "--identity"]),
])
def test_help_exits_0(args, must_mention):
    rc, out, err = run_cli(args)
    _assert_exit(rc, out, err, 0)
    text = out + err
    for word in must_mention:
        assert word in text, "%r missing from help output:\n%s" % (word, text)


def test_version_exits_0():
    rc, out, err = run_cli(["version"])
    _assert_exit(rc, out, err, 0)
    assert re.search(r"\d+\.\d+", out), "version output has no version number: %r" % out


def test_version_names_the_boringssl_build():
    """The BoringSSL flavour is the one the build asked for: by default the
    static source build with assembly (test/run exports what it configured),
    and a static build depends on no TLS shared object."""
    expected = os.environ.get("PEERPROXY_EXPECT_BORINGSSL", "source")
    rc, out, err = run_cli(["version"])
    _assert_exit(rc, out, err, 0)
    m = re.search(r"^boringssl: (\w+) \((.*)\)$", out, re.M)
    assert m, "version output names no BoringSSL build: %r" % out
    assert m.group(1) == expected, out
    assert "BoringSSL" in m.group(2), out
    ldd = subprocess.run(["ldd", harness.PROXY_BIN], capture_output=True, text=True).stdout
    has_shared = re.search(r"lib(ssl|crypto)\.so", ldd) is not None
    if expected == "source":
        assert "with assembly" in m.group(2), out
        assert not has_shared, ldd
        # A ThreadSanitizer build runs on the instrumented variant, or TSan
        # would see nothing the library does.
        with open(harness.PROXY_BIN, "rb") as f:
            tsan = b"__tsan_init" in f.read()
        assert ("-fsanitize=thread" in m.group(2)) == tsan, out
    elif expected == "system":
        assert "/android/libssl.so" in ldd, ldd


@pytest.mark.parametrize("args,names", [
    ([], ["usage", "Usage", "subcommand", "command"]),
    (["frobnicate"], ["frobnicate"]),
    (["--bogus-flag"], ["--bogus-flag"]),
])
def test_bad_subcommand_exits_2(args, names):
    rc, out, err = run_cli(args)
    _assert_exit(rc, out, err, 2, *names)


# ---------------------------------------------------------------------------
# inbound / outbound / verify with one thing wrong


@pytest.fixture
def inbound_base(pki):
    n0 = pki[0]
    return {
        "--listen": "127.0.0.1:%d" % harness.free_port(),
        "--target": "127.0.0.1:%d" % harness.free_port(),
        "--ca": str(n0.root_ca),
        "--cert": str(n0.server_crt),
        "--key": str(n0.server_key),
    }


@pytest.fixture
def outbound_base(pki):
    n0, n1 = pki[0], pki[1]
    return {
        "--listen": "127.0.0.1:%d" % harness.free_port(),
        "--target": "127.0.0.1:%d" % harness.free_port(),
        "--ca": str(n0.peer_dir(n1) / "root-ca.crt"),
        "--cert": str(n0.server_crt),
        "--chain": str(n0.peer_dir(n1) / "sub-ca.crt"),
        "--key": str(n0.server_key),
        "--peer": n1.id,
    }


def _argv(cmd, base, drop=(), extra=(), **override):
    args = [cmd]
    for flag, value in base.items():
        if flag in drop:
            continue
        args += [flag, override.get(flag, value)]
    return args + list(extra)


@pytest.mark.parametrize("flag", ["--listen", "--target", "--ca", "--cert", "--key"])
def test_inbound_missing_required_flag(inbound_base, flag):
    rc, out, err = run_cli(_argv("inbound", inbound_base, drop=[flag]))
    _assert_exit(rc, out, err, 2, flag)


@pytest.mark.parametrize("flag", ["--listen", "--target", "--ca", "--cert", "--key"])
def test_outbound_missing_required_flag(outbound_base, flag):
    rc, out, err = run_cli(_argv("outbound", outbound_base, drop=[flag]))
    _assert_exit(rc, out, err, 2, flag)


@pytest.mark.parametrize("cmd", ["inbound", "outbound"])
def test_unknown_flag(cmd, inbound_base, outbound_base):
    base = inbound_base if cmd == "inbound" else outbound_base
    rc, out, err = run_cli(_argv(cmd, base, extra=["--no-such-flag", "x"]))
    _assert_exit(rc, out, err, 2, "--no-such-flag")


def test_flag_without_value(inbound_base):
    rc, out, err = run_cli(_argv("inbound", inbound_base, drop=["--listen"]) + ["--listen"])
    _assert_exit(rc, out, err, 2, "--listen")


@pytest.mark.parametrize("flag,value", [
    ("--handshake-timeout", "10parsecs"),
    ("--handshake-timeout", "abc"),
    ("--connect-timeout", "-1s"),
    ("--connect-timeout", "ms"),
    ("--idle-timeout", "1.5.5s"),
    ("--idle-timeout", "10 s"),
    ("--idle-timeout", ""),
])
def test_bad_duration(inbound_base, flag, value):
    rc, out, err = run_cli(_argv("inbound", inbound_base, extra=[flag, value]))
    _assert_exit(rc, out, err, 2, flag)


@pytest.mark.parametrize("flag,value", [
    ("--listen", "127.0.0.1"),
    ("--listen", "127.0.0.1:99999"),
    ("--listen", "127.0.0.1:-1"),
    ("--listen", "127.0.0.1:port"),
    ("--listen", "[::1:8080"),
    ("--listen", "[::1]"),
    ("--listen", "unix:"),
    ("--target", "no-port-here"),
    ("--target", "127.0.0.1:"),
])
def test_bad_address_inbound(inbound_base, flag, value):
    rc, out, err = run_cli(_argv("inbound", inbound_base, **{flag: value}))
    _assert_exit(rc, out, err, 2, flag)


@pytest.mark.parametrize("value", ["127.0.0.1", "127.0.0.1:8443,", ",127.0.0.1:8443",
                                   "127.0.0.1:8443,nonsense", "unix:"])
def test_bad_outbound_targets(outbound_base, value):
    rc, out, err = run_cli(_argv("outbound", outbound_base, **{"--target": value}))
    _assert_exit(rc, out, err, 2, "--target")


@pytest.mark.parametrize("flag,value", [
    ("--tls-min", "1.1"),
    ("--tls-min", "1.4"),
    ("--tls-min", "tls13"),
    ("--identity", "kerberos"),
    ("--workers", "many"),
    ("--workers", "-2"),
    ("--allow-peer", "../../etc/passwd"),
])
def test_bad_option_values_inbound(inbound_base, flag, value):
    rc, out, err = run_cli(_argv("inbound", inbound_base, extra=[flag, value]))
    _assert_exit(rc, out, err, 2, flag)


@pytest.mark.parametrize("flag,value", [("--peer", "not-a-node-id"), ("--tls-min", "1.0")])
def test_bad_option_values_outbound(outbound_base, flag, value):
    rc, out, err = run_cli(_argv("outbound", outbound_base, drop=[flag], extra=[flag, value]))
    _assert_exit(rc, out, err, 2, flag)


# ---------------------------------------------------------------------------
# certificate and key files


def _garbage(tmp_path, name):
    p = tmp_path / name
    p.write_text("this is not PEM at all\n-----BEGIN NONSENSE-----\nQUJD\n-----END NONSENSE-----\n")
    return str(p)


@pytest.mark.parametrize("flag", ["--ca", "--cert", "--key"])
def test_inbound_missing_file(inbound_base, tmp_path, flag):
    missing = str(tmp_path / "does-not-exist.pem")
    rc, out, err = run_cli(_argv("inbound", inbound_base, **{flag: missing}))
    _assert_exit(rc, out, err, 2, missing)


@pytest.mark.parametrize("flag", ["--ca", "--cert", "--key", "--chain"])
def test_outbound_missing_file(outbound_base, tmp_path, flag):
    missing = str(tmp_path / "does-not-exist.pem")
    rc, out, err = run_cli(_argv("outbound", outbound_base, **{flag: missing}))
    _assert_exit(rc, out, err, 2, missing)


@pytest.mark.parametrize("flag", ["--ca", "--cert", "--key"])
def test_inbound_garbage_file(inbound_base, tmp_path, flag):
    bad = _garbage(tmp_path, "garbage%s.pem" % flag)
    rc, out, err = run_cli(_argv("inbound", inbound_base, **{flag: bad}))
    _assert_exit(rc, out, err, 2, bad)


@pytest.mark.parametrize("flag", ["--ca", "--cert", "--key", "--chain"])
def test_outbound_garbage_file(outbound_base, tmp_path, flag):
    bad = _garbage(tmp_path, "garbage%s.pem" % flag)
    rc, out, err = run_cli(_argv("outbound", outbound_base, **{flag: bad}))
    _assert_exit(rc, out, err, 2, bad)


def test_empty_cert_file(inbound_base, tmp_path):
    empty = tmp_path / "empty.crt"
    empty.write_text("")
    rc, out, err = run_cli(_argv("inbound", inbound_base, **{"--cert": str(empty)}))
    _assert_exit(rc, out, err, 2, str(empty))


def test_cert_given_as_key(inbound_base):
    cert = inbound_base["--cert"]
    rc, out, err = run_cli(_argv("inbound", inbound_base, **{"--key": cert}))
    _assert_exit(rc, out, err, 2, "--key", cert)


@pytest.mark.parametrize("cmd", ["inbound", "outbound"])
def test_key_not_matching_cert(cmd, pki, inbound_base, outbound_base):
    base = inbound_base if cmd == "inbound" else outbound_base
    other_key = str(pki[2].server_key)
    rc, out, err = run_cli(_argv(cmd, base, **{"--key": other_key}))
    _assert_exit(rc, out, err, 2, "--key", "--cert", other_key, base["--cert"])


def test_listen_address_in_use(inbound_base):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port = harness.free_port()
    holder.bind(("127.0.0.1", port))
    holder.listen(1)
    try:
        addr = "127.0.0.1:%d" % port
        rc, out, err = run_cli(_argv("inbound", inbound_base, **{"--listen": addr}))
        assert rc in (1, 2), "expected a failure exit, got %r\n%s" % (rc, err)
        assert addr in err or str(port) in err, err
        assert "event=ready" not in err, err
    finally:
        holder.close()


@pytest.mark.parametrize("value", ["nonsense", "127.0.0.1", "unix:/tmp/admin.sock",
                                   "127.0.0.1:99999"])
@pytest.mark.parametrize("cmd", ["inbound", "run"])
def test_bad_admin_address(cmd, inbound_base, tmp_path, value):
    if cmd == "run":
        cfg = tmp_path / "pp.yaml"
        cfg.write_text("inbound:\n  - {name: a, listen: 127.0.0.1:1, target: 127.0.0.1:2, "
                       "ca: %s, cert: %s, key: %s}\n"
                       % (inbound_base["--ca"], inbound_base["--cert"], inbound_base["--key"]))
        argv = ["run", "--config", cfg, "--admin", value]
    else:
        argv = _argv("inbound", inbound_base, extra=["--admin", value])
    rc, out, err = run_cli(argv)
    _assert_exit(rc, out, err, 2, "--admin", value)


def test_admin_address_in_use(inbound_base):
    """The admin port taken by another process: a startup failure naming
    the address, not a proxy serving without its probes."""
    holder = socket.socket()
    port = harness.free_port()
    holder.bind(("127.0.0.1", port))
    holder.listen(1)
    try:
        addr = "127.0.0.1:%d" % port
        rc, out, err = run_cli(_argv("inbound", inbound_base, extra=["--admin", addr]))
        assert rc == 1, "expected exit 1, got %r\n%s" % (rc, err)
        assert "event=listen_failed endpoint=admin addr=%s" % addr in err, err
        assert "event=ready" not in err, err
    finally:
        holder.close()


# ---------------------------------------------------------------------------
# verify: usage errors (verdicts are in test_trust.py)


def test_verify_missing_cert_flag(pki):
    rc, out, err = run_cli(["verify", "--ca", pki[0].root_ca])
    _assert_exit(rc, out, err, 2, "--cert")


def test_verify_missing_ca_flag(pki):
    rc, out, err = run_cli(["verify", "--cert", pki[1].server_crt])
    _assert_exit(rc, out, err, 2, "--ca")


def test_verify_missing_file(pki, tmp_path):
    missing = str(tmp_path / "nope.crt")
    rc, out, err = run_cli(["verify", "--ca", pki[0].root_ca, "--cert", missing])
    _assert_exit(rc, out, err, 2, missing)


def test_verify_bad_identity_mode(pki):
    rc, out, err = run_cli(["verify", "--ca", pki[0].root_ca, "--cert", pki[0].server_crt,
                            "--identity", "nope"])
    _assert_exit(rc, out, err, 2, "--identity")
