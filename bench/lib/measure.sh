# bench/lib/measure.sh: one system, one round: start the pair, prove it
# works, measure, stop.  Sourced by bench/run.
#
# Results go to $RESULTS (TSV: section, system, round, metric, value);
# section is the key type.  Notes (check and probe outcomes, log lines)
# go to $NOTES (TSV: section, system, round, note).

# phase NAME: with BENCH_VERBOSE=1, say what starts now (for timing).
phase() { [ "${BENCH_VERBOSE:-0}" != 1 ] || log "  $CUR_SYS: $*"; }

record() { printf '%s\t%s\t%s\t%s\t%s\n' "$K_TYPE" "$CUR_SYS" "$CUR_ROUND" "$1" "$2" >>"$RESULTS"; }
note() { printf '%s\t%s\t%s\t%s\n' "$K_TYPE" "$CUR_SYS" "$CUR_ROUND" "$*" >>"$NOTES"; }

# forget PID...: drop stopped processes from the cleanup registry, so a
# later cleanup never signals a recycled pid.
forget() {
	local p
	for p in "$@"; do sed -i "/^$p\$/d" "$WORK/pids"; done
}

stop_system() {
	kill_tree "${SYS_PIDS[@]}"
	forget "${SYS_PIDS[@]}"
	SYS_PIDS=()
}

# run_load NAME TIMEOUT ARGS...: run bench/load, bounded; its line is in
# LOAD_OUT (empty on failure) and kept in $DIR/NAME.out.
run_load() {
	local name=$1 tmo=$2
	shift 2
	LOAD_OUT=""
	timeout -k 5 "$tmo" "$LOAD_BIN" "$@" >"$DIR/$name.out" 2>"$DIR/$name.err" || true
	LOAD_OUT=$(grep -m1 '^mode=\|^check=' "$DIR/$name.out" || true)
	if [ -z "$LOAD_OUT" ]; then
		warn "$CUR_SYS: load $name produced nothing: $(tail -2 "$DIR/$name.err" 2>/dev/null)"
		note "load $name failed: $(tail -1 "$DIR/$name.err" 2>/dev/null)"
	fi
}

# measure_memory: idle tunnels' RSS, all processes of the pair.
measure_memory() {
	local base after held errors hold_pid out="$DIR/hold.out"
	sleep 0.3
	base=$(rss_kb "${SYS_PIDS[@]}")
	# Per side too: SYS_PIDS holds the inbound, then the outbound.
	local base_in after_in
	base_in=$(rss_kb "${SYS_PIDS[0]}")
	spawn "$out" "$LOAD_BIN" hold --connect "127.0.0.1:$OUT_PORT" \
		--count "$HOLD_COUNT" --concurrency 64 --seconds "$HOLD_MAX"
	hold_pid=$SPAWNED_PID
	if ! wait_for_line "$out" '^mode=hold count' "$HOLD_MAX" "$hold_pid"; then
		warn "$CUR_SYS: idle tunnels were not all open in ${HOLD_MAX}s"
		note "memory: tunnels not open in time"
		kill_tree "$hold_pid"
		forget "$hold_pid"
		return
	fi
	# Let the pair settle (deferred frees, worker bookkeeping).
	sleep 0.5
	after=$(rss_kb "${SYS_PIDS[@]}")
	after_in=$(rss_kb "${SYS_PIDS[0]}")
	local line
	line=$(grep -m1 '^mode=hold count' "$out")
	held=$(kv held "$line")
	errors=$(kv errors "$line")
	kill_tree "$hold_pid"
	forget "$hold_pid"
	record idle_tunnels "$held"
	record idle_errors "$errors"
	if [ "${held:-0}" -gt 0 ]; then
		record idle_kib_per_tunnel "$(awk -v a="$after" -v b="$base" -v n="$held" \
			'BEGIN { printf "%.2f", (a - b) / n }')"
		record rss_base_kib "$base"
		record idle_kib_in "$(awk -v a="$after_in" -v b="$base_in" -v n="$held" \
			'BEGIN { printf "%.2f", (a - b) / n }')"
		record idle_kib_out "$(awk -v a="$((after - after_in))" -v b="$((base - base_in))" -v n="$held" \
			'BEGIN { printf "%.2f", (a - b) / n }')"
	fi
	[ "${errors:-0}" -eq 0 ] || note "memory: $errors of $HOLD_COUNT idle tunnels failed to open"
	# Give the pair time to close the released tunnels before going on.
	sleep 0.5
}

# measure_bulk STREAMS
measure_bulk() {
	local n=$1 u0 s0 u1 s1 c0 c1
	read -r u0 s0 < <(cpu_ticks "${SYS_PIDS[@]}")
	run_load "bulk$n" $((DURATION_INT + 60)) bulk --connect "127.0.0.1:$OUT_PORT" \
		--streams "$n" --seconds "$DURATION"
	read -r u1 s1 < <(cpu_ticks "${SYS_PIDS[@]}")
	c0=$((u0 + s0)) c1=$((u1 + s1))
	[ -n "$LOAD_OUT" ] || return 0
	local ok bytes
	ok=$(kv ok "$LOAD_OUT")
	bytes=$(kv bytes "$LOAD_OUT")
	record "bulk${n}_errors" "$(kv errors "$LOAD_OUT")"
	if [ "${ok:-0}" -eq "$n" ]; then
		record "bulk${n}_mbps" "$(kv mbps "$LOAD_OUT")"
		record "bulk${n}_cpu_s_per_gb" "$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v b="$bytes" \
			'BEGIN { if (b > 0) printf "%.3f", t / hz / (b / 1e9) }')"
		record "bulk${n}_sys_share" "$(awk -v s=$((s1 - s0)) -v t=$((c1 - c0)) \
			'BEGIN { if (t > 0) printf "%.3f", s / t }')"
	else
		note "bulk $n streams: $LOAD_OUT"
	fi
}

measure_rate() {
	local u0 s0 u1 s1 c0 c1 ok
	read -r u0 s0 < <(cpu_ticks "${SYS_PIDS[@]}")
	run_load rate $((DURATION_INT + 60)) rate --connect "127.0.0.1:$OUT_PORT" \
		--concurrency "$RATE_CONCURRENCY" --seconds "$DURATION" --msg 64
	read -r u1 s1 < <(cpu_ticks "${SYS_PIDS[@]}")
	c0=$((u0 + s0)) c1=$((u1 + s1))
	[ -n "$LOAD_OUT" ] || return 0
	ok=$(kv ok "$LOAD_OUT")
	record tunnels_per_s "$(kv rate "$LOAD_OUT")"
	record tunnel_errors "$(kv errors "$LOAD_OUT")"
	record setup_p50_ms "$(kv setup_p50_ms "$LOAD_OUT")"
	record setup_p99_ms "$(kv setup_p99_ms "$LOAD_OUT")"
	if [ "${ok:-0}" -gt 0 ]; then
		record cpu_ms_per_tunnel "$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$ok" \
			'BEGIN { printf "%.3f", t / hz * 1000 / n }')"
		record sys_ms_per_tunnel "$(awk -v t=$((s1 - s0)) -v hz="$CLK_TCK" -v n="$ok" \
			'BEGIN { printf "%.3f", t / hz * 1000 / n }')"
	fi
	[ "$(kv errors "$LOAD_OUT")" = 0 ] || note "handshake test: $LOAD_OUT"
}

measure_latency() {
	run_load latency $((DURATION_INT + 60)) latency --connect "127.0.0.1:$OUT_PORT" \
		--conns "$LAT_CONNS" --seconds "$DURATION" --msg 64
	[ -n "$LOAD_OUT" ] || return 0
	record rtt_p50_us "$(kv p50_us "$LOAD_OUT")"
	record rtt_p99_us "$(kv p99_us "$LOAD_OUT")"
	record rtt_p999_us "$(kv p999_us "$LOAD_OUT")"
	record rtt_errors "$(kv errors "$LOAD_OUT")"
	[ "$(kv errors "$LOAD_OUT")" = 0 ] || note "latency test: $LOAD_OUT"
}

# probe_tls: TLS facts and refusals seen at the inbound, with python's
# OpenSSL as the client (done once per key type and system).
probe_tls() {
	local out
	out=$(timeout 60 /usr/bin/python3 "$BENCH/lib/probe.py" "$IN_PORT" "$K_PEM" 2>&1) || true
	record probe_ok "$(grep -c '^ok ' <<<"$out" || true)"
	record probe_bad "$(grep -c '^BAD ' <<<"$out" || true)"
	while read -r line; do
		[ -n "$line" ] && note "probe: $line"
	done <<<"$out"
}

# check_wrong_anchor: the same system with the outbound trusting the wrong
# root (node0's own) must not carry a round trip: proves the outbound
# really verifies the server (done once per key type and system).
check_wrong_anchor() {
	local keep_ca=$K_OUT_CA keep_pem=$K_OUT_CA_PEM saved=("${SYS_PIDS[@]}")
	local saved_in=$IN_PORT saved_out=$OUT_PORT saved_logs=("${SYS_LOGS[@]}")
	K_OUT_CA=$K_PEM/wrong-ca.pem K_OUT_CA_PEM=$K_PEM/wrong-ca.pem
	mkdir -p "$DIR/wrong-anchor"
	if "${CUR_SYS}_start" "$DIR/wrong-anchor"; then
		run_load wrong-anchor 30 check --connect "127.0.0.1:$OUT_PORT" --bytes 1000
		if [ "$(kv check "$LOAD_OUT")" = ok ]; then
			note "BAD: outbound with the wrong anchor still carried a round trip"
			record probe_bad 1
		else
			note "probe: ok outbound with the wrong anchor refused the server (round trip: ${LOAD_OUT:-none})"
			record probe_ok 1
		fi
	else
		note "wrong-anchor pair did not start"
	fi
	stop_system
	K_OUT_CA=$keep_ca K_OUT_CA_PEM=$keep_pem
	SYS_PIDS=("${saved[@]}") IN_PORT=$saved_in OUT_PORT=$saved_out SYS_LOGS=("${saved_logs[@]}")
}

# collect_logs: lines the proxies logged (at warning level or above; any
# line for systems that log nothing else) during the round.
collect_logs() {
	local f n total=0
	for f in "${SYS_LOGS[@]}"; do
		[ -f "$f" ] || continue
		n=$(grep -cv '^[[:space:]]*$' "$f" || true)
		total=$((total + n))
		if [ "$n" -gt 0 ]; then
			note "log ${f#"$DIR"/}: $n lines; first: $(grep -v '^[[:space:]]*$' "$f" | head -1 | cut -c1-300)"
			# Reasons, for peerproxy's logfmt lines.
			{ grep -o 'event=[a-z_]* .*reason=[a-z_]*' "$f" 2>/dev/null || true; } |
				sed 's/^\(event=[a-z_]*\).*\(reason=[a-z_]*\)$/\1 \2/' |
				sort | uniq -c | sort -rn | head -5 |
				while read -r c what; do note "log ${f#"$DIR"/}: $c x $what"; done
		fi
	done
	record log_lines "$total"
}

# measure_system SYS ROUND: everything for one system in one round.
measure_system() {
	CUR_SYS=$1
	CUR_ROUND=$2
	DIR="$WORK/run/$K_TYPE/$CUR_SYS/r$CUR_ROUND"
	mkdir -p "$DIR"
	log "[$K_TYPE round $CUR_ROUND] $(system_label "$CUR_SYS")"
	if ! "${CUR_SYS}_start" "$DIR"; then
		warn "$CUR_SYS did not start"
		note "did not start"
		record start_failed 1
		stop_system
		return 0
	fi
	run_load check 40 check --connect "127.0.0.1:$OUT_PORT" --bytes 1048576
	if [ "$(kv check "$LOAD_OUT")" != ok ]; then
		warn "$CUR_SYS: round trip through the pair failed: ${LOAD_OUT:-no answer}"
		note "round trip failed: ${LOAD_OUT:-no answer}"
		record check_failed 1
		collect_logs
		stop_system
		return 0
	fi
	# The negative check, on a second pair started beside this one.
	phase wrong-anchor
	[ "$CUR_ROUND" -ne 1 ] || check_wrong_anchor
	record check_ok 1
	phase probes
	if [ "$CUR_ROUND" -eq 1 ]; then
		probe_tls
	fi
	phase memory
	[ "$HOLD_COUNT" -eq 0 ] || measure_memory
	phase bulk
	measure_bulk 1
	measure_bulk 4
	phase rate
	measure_rate
	phase latency
	measure_latency
	collect_logs
	phase stop
	stop_system
	phase stopped
}
