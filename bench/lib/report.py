"""Turn bench/run's raw rows into the Markdown report (on stdout).

Input rows (TSV): section, system, round, metric, value.  A section is a
key type (p256, rsa3072) or "bssl"; system "crypto" rows hold the
crypto speeds.  Notes (TSV): section, system, round, text.
"""

import argparse
import collections
import math
import statistics

LABEL = {"peerproxy": "peerproxy", "stunnel": "stunnel", "haproxy": "haproxy",
         "nginx": "nginx-stream", "ppresume": "peerproxy (resumption on)"}
KEY_LABEL = {"p256": "ECDSA P-256", "rsa3072": "RSA-3072"}

# (metric, label, better): better is "high", "low" or None (no ratio).
METRICS = [
    ("bulk1_mbps", "Bulk throughput, 1 stream, MB/s", "high"),
    ("bulk4_mbps", "Bulk throughput, 4 streams, MB/s", "high"),
    ("bulk1_cpu_s_per_gb", "Proxy CPU per GB, 1 stream, CPU-s", "low"),
    ("bulk4_cpu_s_per_gb", "Proxy CPU per GB, 4 streams, CPU-s", "low"),
    ("bulk4_sys_share", "… share of it in the kernel", None),
    ("tunnels_per_s", "New tunnels/s (full mutual handshakes)", "high"),
    ("cpu_ms_per_tunnel", "Proxy CPU per new tunnel, CPU-ms", "low"),
    ("sys_ms_per_tunnel", "… of which in the kernel, CPU-ms", "low"),
    ("setup_p50_ms", "Tunnel setup under that load, p50 ms", "low"),
    ("setup_p99_ms", "Tunnel setup under that load, p99 ms", "low"),
    ("rtt_p50_us", "Round trip, 64 B, p50 µs", "low"),
    ("rtt_p99_us", "Round trip, 64 B, p99 µs", "low"),
    ("rtt_p999_us", "Round trip, 64 B, p99.9 µs", "low"),
    ("idle_kib_per_tunnel", "Memory per idle tunnel, KiB RSS", "low"),
    ("idle_kib_in", "… of which the inbound side", "low"),
    ("idle_kib_out", "… of which the outbound side", "low"),
]
# Summed over rounds rather than medians.
ERRORS = [
    ("check_failed", "round-trip check failures"),
    ("start_failed", "start failures"),
    ("tunnel_errors", "handshake test errors"),
    ("bulk1_errors", "bulk (1 stream) failed streams"),
    ("bulk4_errors", "bulk (4 streams) failed streams"),
    ("rtt_errors", "latency test errors"),
    ("idle_errors", "idle tunnels that failed to open"),
    ("probe_bad", "TLS probes that went wrong"),
    ("log_lines", "lines the proxies logged (warnings, errors)"),
]


def fnum(v):
    if v is None:
        return "–"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def fpct(v):
    return "–" if v is None else f"{100 * v:.0f}%"


def load(args):
    rows = collections.defaultdict(list)  # (section, system, metric) -> [(round, value)]
    with open(args.results) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 5:
                continue
            sec, sysname, rnd, metric, value = parts
            try:
                rows[(sec, sysname, metric)].append((int(rnd), float(value)))
            except ValueError:
                continue
    notes = collections.defaultdict(list)  # (section, system) -> [(round, text)]
    with open(args.notes) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t", 3)
            if len(parts) == 4:
                notes[(parts[0], parts[1])].append((int(parts[2]), parts[3]))
    return rows, notes


def median(rows, sec, sysname, metric):
    vals = [v for _, v in rows.get((sec, sysname, metric), [])]
    return statistics.median(vals) if vals else None


def best(rows, sec, sysname, metric):
    vals = [v for _, v in rows.get((sec, sysname, metric), [])]
    return max(vals) if vals else None


def total(rows, sec, sysname, metric):
    vals = [v for _, v in rows.get((sec, sysname, metric), [])]
    return sum(vals) if vals else None


def ratio(pp, other):
    if pp is None or other is None or other == 0:
        return "–"
    return f"{pp / other:.2f}×"


def results_table(out, rows, sec, systems):
    peers = [s for s in systems if s != "peerproxy"]
    has_pp = "peerproxy" in systems
    head = ["metric (median over rounds)", ""] + [LABEL[s] for s in systems]
    if has_pp:
        head += [f"pp / {LABEL[s]}" for s in peers]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * 2 + "--:|" * (len(head) - 2))
    for metric, label, better in METRICS:
        meds = {s: median(rows, sec, s, metric) for s in systems}
        if all(v is None for v in meds.values()):
            continue
        arrow = {"high": "↑ better", "low": "↓ better"}.get(better, "")
        fmt = fpct if metric.endswith("_share") else fnum
        cells = [label, arrow] + [fmt(meds[s]) for s in systems]
        if has_pp:
            cells += [ratio(meds["peerproxy"], meds[s]) if better else ""
                      for s in peers]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("Errors and log lines, summed over all rounds:")
    out.append("")
    out.append("| | " + " | ".join(LABEL[s] for s in systems) + " |")
    out.append("|---|" + "--:|" * len(systems))
    for metric, label in ERRORS:
        tots = {s: total(rows, sec, s, metric) for s in systems}
        if all(v is None for v in tots.values()):
            continue
        out.append("| " + label + " | " +
                   " | ".join("–" if tots[s] is None else f"{tots[s]:.0f}"
                              for s in systems) + " |")
    held = {s: median(rows, sec, s, "idle_tunnels") for s in systems}
    if any(v is not None for v in held.values()):
        out.append("| idle tunnels held (median) | " +
                   " | ".join(fnum(held[s]) for s in systems) + " |")
    out.append("")


def per_round_table(out, rows, sec, systems):
    out.append("| metric | " + " | ".join(LABEL[s] for s in systems) + " |")
    out.append("|---|" + "---|" * len(systems))
    for metric, label, _ in METRICS:
        cells = []
        fmt = fpct if metric.endswith("_share") else fnum
        for s in systems:
            vals = sorted(rows.get((sec, s, metric), []))
            cells.append(" / ".join(fmt(v) for _, v in vals) or "–")
        if all(c == "–" for c in cells):
            continue
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append("")


def crypto_section(out, rows, sec, systems, nproc):
    """Handshakes per core the public-key operations allow."""
    # The fastest of the measurements: other load only slows them down.
    def bssl(desc):
        return best(rows, "bssl", "crypto", desc + " ops/s")

    def own(m):
        return best(rows, sec, "crypto", m)

    kg_b = bssl("Curve25519 base-point multiplication")
    sh_b = bssl("Curve25519 arbitrary point multiplication")
    src = {}
    if sec == "p256":
        sign = bssl("ECDSA P-256 signing") or own("sign_per_s")
        cv = bssl("ECDSA P-256 verify") or own("verify_per_s")
        certsig = bssl("ECDSA P-256 verify") or own("certsig_per_s")
        src["sign"] = "bssl speed" if bssl("ECDSA P-256 signing") else "cryptospeed"
    else:
        sign, cv, certsig = own("sign_per_s"), own("verify_per_s"), own("certsig_per_s")
        src["sign"] = "bench/cryptospeed (own RSA-3072 keys)"
        if sign is None:
            # Geometric interpolation between RSA 2048 and 4096.
            s2, s4 = bssl("RSA 2048 signing"), bssl("RSA 4096 signing")
            v2, v4 = bssl("RSA 2048 verify (fresh key)"), bssl("RSA 4096 verify (fresh key)")
            if s2 and s4 and v2 and v4:
                e = math.log2(3072 / 2048)
                sign = s2 * (s4 / s2) ** e
                cv = certsig = v2 * (v4 / v2) ** e
                src["sign"] = "interpolated from bssl speed RSA 2048/4096"
    kg = kg_b or own("x25519_keygen_per_s")
    sh = sh_b or own("x25519_shared_per_s")
    ops = [("signature (CertificateVerify)", sign, own("sign_per_s")),
           ("verification of a CertificateVerify", cv, own("verify_per_s")),
           ("verification of a certificate signature", certsig, own("certsig_per_s")),
           ("X25519 key generation (base point)", kg, own("x25519_keygen_per_s")),
           ("X25519 shared secret (arbitrary point)", sh, own("x25519_shared_per_s"))]
    out.append(f"Operations per second on one core, the fastest of the measurements "
               f"({KEY_LABEL.get(sec, sec)}; "
               f"signatures from {src['sign']}, X25519 from "
               f"{'bssl speed' if kg_b else 'bench/cryptospeed'}):")
    out.append("")
    out.append("| operation | used, ops/s | bench/cryptospeed on the PKI's own keys, ops/s |")
    out.append("|---|--:|--:|")
    for name, v, o in ops:
        out.append(f"| {name} | {fnum(v)} | {fnum(o)} |")
    out.append("")
    if None in (sign, cv, certsig, kg, sh):
        out.append("(incomplete: no ceiling computed)")
        out.append("")
        return
    t_client = 1 / sign + 1 / cv + 1 / certsig + 1 / kg + 1 / sh
    t_server = 1 / sign + 1 / cv + 2 / certsig + 1 / kg + 1 / sh
    t_pair = t_client + t_server
    ceiling = nproc / t_pair
    out.append("Per full mutual handshake, both ends of the pair run on this machine:")
    out.append("")
    out.append("- client (outbound): 1 signature + 1 CertificateVerify check + 1 certificate "
               "signature (server leaf by node1's root) + X25519 keygen + X25519 shared "
               f"= {t_client * 1e6:.0f} µs")
    out.append("- server (inbound): 1 signature + 1 CertificateVerify check + 2 certificate "
               "signatures (client leaf by the cross certificate, cross certificate by the "
               f"root) + X25519 keygen + X25519 shared = {t_server * 1e6:.0f} µs")
    out.append(f"- pair: T = 2/sign + 2/verify + 3/certsig + 2/keygen + 2/shared = "
               f"{t_pair * 1e6:.0f} µs → **{1 / t_pair:,.0f} handshakes/s per core**, "
               f"{ceiling:,.0f}/s on {nproc} cores (the load generator and the backend "
               "share those cores)")
    out.append("")
    out.append("| | " + " | ".join(LABEL[s] for s in systems) + " |")
    out.append("|---|" + "--:|" * len(systems))
    rates = {s: median(rows, sec, s, "tunnels_per_s") for s in systems}
    cpus = {s: median(rows, sec, s, "cpu_ms_per_tunnel") for s in systems}
    out.append("| new tunnels/s (median) | " + " | ".join(fnum(rates[s]) for s in systems) + " |")
    out.append(f"| share of the {nproc}-core ceiling ({ceiling:,.0f}/s) | " + " | ".join(
        "–" if rates[s] is None else f"{100 * rates[s] / ceiling:.0f}%" for s in systems) + " |")
    out.append("| proxy CPU per tunnel, ms | " + " | ".join(fnum(cpus[s]) for s in systems) + " |")
    out.append(f"| crypto floor ({t_pair * 1e3:.3f} ms) / CPU per tunnel | " + " | ".join(
        "–" if not cpus[s] else f"{100 * t_pair * 1e3 / cpus[s]:.0f}%" for s in systems) + " |")
    out.append("")
    # 10% slack: the speeds are measured at other moments than the tunnels.
    below = [LABEL[s] for s in systems if cpus[s] and cpus[s] < 0.9 * t_pair * 1e3]
    if below:
        out.append(f"**Warning**: {', '.join(below)} spent clearly less CPU per tunnel "
                   "than the public-key operations of a full mutual handshake take: those "
                   "tunnels cannot all have been full handshakes (session resumption?).")
        out.append("")


def aes_section(out, rows, keys, systems, nproc):
    seal = best(rows, "bssl", "crypto", "AES-128-GCM (16384 bytes) seal MB/s")
    if seal is None:
        return
    per_core = seal / 2  # each byte is sealed once (outbound) and opened once (inbound)
    ceil = per_core * nproc
    out.append(f"AES-128-GCM, 16 KiB records: {seal:,.0f} MB/s sealed per core (bssl speed; "
               "this BoringSSL times no AES-128-GCM open, taken as equal). Through the pair "
               f"each byte is sealed once and opened once: {per_core:,.0f} MB/s per core, "
               f"{ceil:,.0f} MB/s on {nproc} cores, before any system call or copy.")
    out.append("")
    out.append("| 4-stream bulk | " + " | ".join(LABEL[s] for s in systems) + " |")
    out.append("|---|" + "--:|" * len(systems))
    for k in keys:
        vals = {s: median(rows, k, s, "bulk4_mbps") for s in systems}
        out.append(f"| {KEY_LABEL.get(k, k)}: MB/s, share of {ceil:,.0f} | " + " | ".join(
            "–" if vals[s] is None else f"{vals[s]:,.0f} ({100 * vals[s] / ceil:.0f}%)"
            for s in systems) + " |")
    out.append("")


def notes_section(out, notes, keys, systems):
    for k in keys:
        for s in systems:
            items = notes.get((k, s), [])
            if not items:
                continue
            by_text = collections.OrderedDict()
            for rnd, text in items:
                by_text.setdefault(text, []).append(rnd)
            out.append(f"- **{LABEL[s]}, {KEY_LABEL.get(k, k)}**")
            for text, rnds in by_text.items():
                out.append(f"  - round {','.join(map(str, sorted(set(rnds))))}: {text}")
    out.append("")


def main():
    ap = argparse.ArgumentParser()
    for a in ("results", "notes", "machine", "systems", "keys", "started", "command"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    for a in ("elapsed", "rounds", "idle", "concurrency", "lat-conns",
              "workers", "nproc", "quick"):
        ap.add_argument("--" + a, type=int, required=True)
    args = ap.parse_args()
    rows, notes = load(args)
    systems = args.systems.split(",")
    keys = args.keys.split(",")
    out = []
    out.append(f"# peerproxy benchmark, {args.started}")
    out.append("")
    out.append(f"`{args.command}`: {'quick run' if args.quick else 'full run'}, "
               f"{args.rounds} round(s), {args.seconds:g} s per test, "
               f"{args.elapsed // 60} min {args.elapsed % 60} s in all.")
    out.append("")
    with open(args.machine) as f:
        out.append(f.read().rstrip())
    out.append("")
    out.append("## Setup")
    out.append("")
    out.append(
        "Every system runs the same pair on 127.0.0.1: an outbound (node0: plain in, "
        "TLS 1.3 out, presents its leaf + the cross certificate node1 issued, trusts only "
        "node1's root) in front of an inbound (node1: demands the client chain, trusts only "
        "its own root, name constraints enforced) in front of a plain echo/sink backend "
        "(bench/load serve). Certificates are the same files for all (PEM-only copies for "
        "the OpenSSL-based systems); session resumption is off (peerproxy: "
        "--session-resumption off, its default being on), so every tunnel is a full "
        f"mutual handshake; {args.workers} workers each (peerproxy --workers, HAProxy "
        "nbthread, nginx worker_processes; stunnel runs a thread per connection). "
        "The OpenSSL-based systems are pinned to TLS_AES_128_GCM_SHA256, the suite "
        "BoringSSL picks on AES hardware. Only peerproxy checks the server's peer id "
        "(--peer): the others can match host names only, and the Swaptacular leaf has none.")
    out.append("")
    out.append("Per round and system, on a freshly started pair: a round trip with half-close "
               "(1 MiB echoed, 1 MiB counted by the sink), TLS probes (first round), then:")
    out.append("")
    out.append(f"- **memory**: {args.idle} tunnels opened (64 at a time, each with one echo) and "
               "held idle; RSS of all the pair's processes (nginx/HAProxy workers included) "
               "after minus before, divided by the tunnels held;")
    out.append(f"- **bulk**: 1 and 4 streams of {args.seconds:g} s, **one direction** (client → "
               "backend sink, upload), timed until the sink confirmed the byte count after the "
               "client's half-close; proxy CPU (utime+stime of all the pair's processes) per GB;")
    out.append(f"- **new tunnels/s**: {args.concurrency} concurrent clients for {args.seconds:g} s, "
               "each connecting to the outbound's plain port, sending 64 bytes, reading them "
               "back and closing; errors counted; proxy CPU per completed tunnel;")
    out.append(f"- **latency**: {args.lat_conns} persistent tunnels, 64-byte ping-pong, one "
               f"message in flight per tunnel, for {args.seconds:g} s after a 200 ms warm-up.")
    out.append("")
    out.append("Systems run in rotating order (round 1: A B C D, round 2: B C D A, …). The load "
               f"generator, the backend and both proxies share the {args.nproc} cores, so "
               "absolute numbers are lower than on separate machines; the ratios are the point. "
               "pp / X is peerproxy's median divided by X's: above 1 is better for ↑ rows, "
               "below 1 for ↓ rows.")
    out.append("")
    for k in keys:
        out.append(f"## Results: {KEY_LABEL.get(k, k)} keys")
        out.append("")
        results_table(out, rows, k, systems)
    out.append("## Crypto ceiling (BoringSSL that peerproxy runs on)")
    out.append("")
    for k in keys:
        out.append(f"### {KEY_LABEL.get(k, k)}")
        out.append("")
        crypto_section(out, rows, k, systems, args.nproc)
    out.append("### Bulk")
    out.append("")
    aes_section(out, rows, keys, systems, args.nproc)
    out.append("## Checks, probes and log lines")
    out.append("")
    notes_section(out, notes, keys, systems)
    out.append("## Every round")
    out.append("")
    for k in keys:
        out.append(f"### {KEY_LABEL.get(k, k)} (round 1 / round 2 / …)")
        out.append("")
        per_round_table(out, rows, k, systems)
    print("\n".join(out))


if __name__ == "__main__":
    main()
