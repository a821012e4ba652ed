"""Resource behaviour: bounded memory under a stalled reader (backpressure)
and graceful drain on SIGTERM/SIGINT."""

import hashlib
import os
import signal
import threading
import time

import pytest

import harness
from harness import connect, recv_all, recv_exact

RSS_BUDGET_KIB = 32 * 1024


class RssSampler(threading.Thread):
    """Samples VmRSS of some processes every 20 ms and keeps the peaks."""

    def __init__(self, procs):
        super().__init__(daemon=True)
        self.procs = procs
        self.peak = {p.pid: 0 for p in procs}
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            for p in self.procs:
                try:
                    self.peak[p.pid] = max(self.peak[p.pid], p.rss_kib())
                except (OSError, harness.ProcessFailure):
                    pass
            self.halt.wait(0.02)

    def stop(self):
        self.halt.set()
        self.join(5)


@pytest.mark.slow
def test_stalled_reader_backpressure_bounds_memory(link, server):
    def first_echo_then_sink(conn, srv):
        with srv.lock:
            first = srv.accepted == 1
        return harness.echo_handler(conn, srv) if first else harness.sink_handler(conn, srv)

    sink = server(first_echo_then_sink)
    lk = link(backend=sink)
    proxies = [lk.outbound, lk.inbound]

    # warm up both proxies with one complete tunnel, then take the baseline
    warm = os.urandom(256 << 10)
    assert harness.roundtrip(lk.out_addr, warm) == warm
    lk.inbound.wait_event("tunnel_closed")
    lk.outbound.wait_event("tunnel_closed")
    baseline = {p.pid: p.rss_kib() for p in proxies}

    sampler = RssSampler(proxies)
    sampler.start()
    total = 200 << 20
    block = memoryview(os.urandom(1 << 20))
    s = connect(lk.out_addr)
    try:
        sink.wait_accepted(2)
        # write as fast as possible for up to 6 s; stop once the writer has
        # made no progress for 1.5 s (the pipeline is full)
        sent, blocked_for = harness.send_until_blocked(s, total, block)
    finally:
        sampler.stop()
        s.close()
    growth = {p.name: (sampler.peak[p.pid] - baseline[p.pid]) for p in proxies}
    print("sent %.1f MiB before blocking; RSS growth KiB %r" % (sent / 1048576.0, growth))
    assert sent < total, "the writer pushed all 200 MiB into a target that never reads"
    assert blocked_for >= 1.5, "the writer was never blocked (sent %d bytes)" % sent
    assert sent < 128 << 20, "%.1f MiB buffered before backpressure" % (sent / 1048576.0)
    for p in proxies:
        assert sampler.peak[p.pid] - baseline[p.pid] < RSS_BUDGET_KIB, \
            "%s grew by %d KiB (baseline %d KiB, peak %d KiB)" % (
                p.name, sampler.peak[p.pid] - baseline[p.pid], baseline[p.pid], sampler.peak[p.pid])
    assert all(p.running() for p in proxies)


def _refused_within(addr, timeout=10.0):
    """Poll until a new connection to ADDR is refused; return True if so."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = connect(addr, timeout=2)
        except ConnectionRefusedError:
            return True
        except OSError:
            return True  # e.g. unix socket removed
        c.close()
        time.sleep(0.05)  # poll interval of a deadline loop
    return False


@pytest.mark.parametrize("which,sig", [
    ("inbound", signal.SIGTERM),
    ("outbound", signal.SIGTERM),
    ("outbound", signal.SIGINT),
])
def test_signal_drains_inflight_tunnel(link, which, sig):
    lk = link()
    victim = lk.inbound if which == "inbound" else lk.outbound
    listen = lk.in_addr if which == "inbound" else lk.out_addr
    first = os.urandom(2 << 20)
    second = os.urandom(2 << 20)
    s = connect(lk.out_addr, timeout=20)
    try:
        sender = threading.Thread(target=s.sendall, args=(first,), daemon=True)
        sender.start()
        assert recv_exact(s, len(first)) == first  # the tunnel is fully up
        sender.join(10)
        victim.send_signal(sig)
        # new connections are refused while the old tunnel lives on
        assert _refused_within(listen), "%s still accepts connections after %s" % (which, sig.name)
        assert victim.running(), "%s exited with a tunnel in flight\n%s" % (which, victim.describe())
        sender = threading.Thread(target=harness.send_then_shutdown, args=(s, second), daemon=True)
        sender.start()
        rest = recv_all(s)
        sender.join(10)
    finally:
        s.close()
    assert hashlib.sha256(rest).digest() == hashlib.sha256(second).digest(), \
        "in-flight transfer broken by the drain (%d of %d bytes)" % (len(rest), len(second))
    rc = victim.wait_exit(timeout=15)
    assert rc == 0, "exit code %r after %s\n%s" % (rc, sig.name, victim.describe())
    # the drained tunnel (not one of the probes) ended normally
    rec = victim.wait_for(lambda r: r.get("event") == "tunnel_closed" and r.get("bytes_up", "0") != "0",
                          what="the drained tunnel's tunnel_closed")
    assert rec["reason"] == "done", rec
    assert int(rec["bytes_up"]) == len(first) + len(second), rec


def test_sigterm_idle_proxy_exits_promptly(link):
    lk = link()
    assert harness.roundtrip(lk.out_addr, b"one\n") == b"one\n"
    lk.inbound.wait_event("tunnel_closed")
    for p in (lk.outbound, lk.inbound):
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        rc = p.wait_exit(timeout=10)
        assert rc == 0, p.describe()
        assert time.monotonic() - t0 < 5, "idle %s took %.1fs to exit" % (p.name, time.monotonic() - t0)
