# bench/systems/peerproxy.sh: the peerproxy pair.
#
# node0's outbound presents its leaf + the cross certificate node1 signed
# for it, trusts only node1's root (as node0 stores it) and requires the
# server's peer id; node1's inbound trusts only its own root, with the
# Swaptacular rules (name constraints, chain length, subject profile).

peerproxy_version() { head -1 "$WORK/peerproxy-version.txt"; }

# peerproxy_wait_ready LOG PORT PID: peerproxy logs event=ready at info
# level, which --log-level warn (used here so that the per-tunnel lines do
# not weigh on the measurements) suppresses: accept either the line or the
# listening socket.
peerproxy_wait_ready() {
	local i
	for ((i = 0; i < 400; i++)); do
		kill -0 "$3" 2>/dev/null || return 1
		grep -q 'event=ready' "$1" 2>/dev/null && return 0
		is_listening "$2" && return 0
		sleep 0.05
	done
	return 1
}

# peerproxy_resumption_flag on|off: the flag that sets TLS session
# resumption, when this build has it (it defaults to on; the comparison
# wants full handshakes, like the other systems' configurations).
peerproxy_resumption_flag() {
	if "$PEERPROXY_BIN" outbound --help 2>&1 | grep -q -- '--session-resumption'; then
		echo "--session-resumption $1"
	fi
}

# peerproxy_start DIR [on|off]: start inbound and outbound (session
# resumption off unless told); sets SYS_PIDS, IN_PORT, OUT_PORT, SYS_LOGS.
peerproxy_start() {
	local dir=$1 resume
	resume=$(peerproxy_resumption_flag "${2:-off}")
	read -r IN_PORT OUT_PORT < <(free_ports 2)
	SYS_PIDS=()
	SYS_LOGS=("$dir/inbound.log" "$dir/outbound.log")
	spawn "$dir/inbound.log" "$PEERPROXY_BIN" inbound \
		--listen "127.0.0.1:$IN_PORT" --target "127.0.0.1:$BACKEND_PORT" \
		--ca "$K_NODE1/root-ca.crt" --cert "$K_NODE1/server.crt" \
		--key "$K_NODE1/server.key" \
		--workers "$WORKERS" --log-level warn --drain-timeout 1s $resume
	SYS_PIDS+=("$SPAWNED_PID")
	peerproxy_wait_ready "$dir/inbound.log" "$IN_PORT" "$SPAWNED_PID" || {
		cat "$dir/inbound.log" >&2
		return 1
	}
	spawn "$dir/outbound.log" "$PEERPROXY_BIN" outbound \
		--listen "127.0.0.1:$OUT_PORT" --target "127.0.0.1:$IN_PORT" \
		--ca "$K_OUT_CA" --cert "$K_NODE0/server.crt" \
		--chain "$K_NODE0/peers/$K_PEER_ID/sub-ca.crt" --key "$K_NODE0/server.key" \
		--peer "$K_PEER_ID" \
		--workers "$WORKERS" --log-level warn --drain-timeout 1s $resume
	SYS_PIDS+=("$SPAWNED_PID")
	peerproxy_wait_ready "$dir/outbound.log" "$OUT_PORT" "$SPAWNED_PID" || {
		cat "$dir/outbound.log" >&2
		return 1
	}
}

# ppresume: peerproxy as it runs by default, with TLS session resumption
# (not in the default system list: --systems ...,ppresume).  Its tunnels
# are mostly resumed, so its handshake numbers are not full handshakes.
ppresume_version() { peerproxy_version; }
ppresume_start() {
	[ -n "$(peerproxy_resumption_flag on)" ] || {
		warn "this peerproxy has no --session-resumption"
		return 1
	}
	peerproxy_start "$1" on
}
