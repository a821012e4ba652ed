"""./deploy/quickstart --once: the README's first command runs the demo
round trip, shows the impostor refused and the metrics, and exits 0."""

import os
import subprocess

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_quickstart_once():
    r = subprocess.run([os.path.join(TOP, "deploy", "quickstart"), "--once"],
                       capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "reply: hello from node A's app" in out, out
    assert "reason=untrusted" in out, out
    assert 'peerproxy_connections_total{tunnel="inbound",result="established"} 1' in out, out
    assert 'peerproxy_handshake_failures_total{tunnel="inbound",reason="untrusted"} 1' in out, out
    assert "Done: the link works and the impostor was refused." in out, out


def _quickstart_before_any_work(arg):
    """Run the quickstart with ARG, which it must answer before it builds
    (or installs) anything; return the finished process."""
    r = subprocess.run([os.path.join(TOP, "deploy", "quickstart"), arg],
                       capture_output=True, text=True, timeout=60)
    assert "Building" not in r.stdout + r.stderr
    return r


def test_quickstart_refuses_an_unknown_argument_before_doing_anything():
    # A typo must not start the long-running demo (or install anything).
    r = _quickstart_before_any_work("--onec")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "unknown argument '--onec'" in r.stderr, r.stderr


def test_quickstart_help_says_what_it_does_and_exits():
    r = _quickstart_before_any_work("--help")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "./deploy/quickstart --once" in r.stdout, r.stdout
