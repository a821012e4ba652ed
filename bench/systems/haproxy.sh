# bench/systems/haproxy.sh: the HAProxy pair, TCP mode, 2 threads each.
#
# Same trust as peerproxy: the outbound's server line presents leaf + cross
# certificate (crt bundle), verifies against node1's root only; the
# inbound's bind demands and verifies a client chain against its own root
# alone (OpenSSL enforces the name constraints).  Like stunnel it cannot
# check the server's peer id (verifyhost matches host names only).
# Resumption off: no-ssl-reuse on the client, no tickets and no session
# cache on the server.  TLS 1.3 only, TLS_AES_128_GCM_SHA256.

haproxy_version() {
	haproxy -vv 2>/dev/null | awk '/^HAProxy version/ { v = $3 } /^Running on OpenSSL version/ { o = $7 } END { print "HAProxy " v " (OpenSSL " o ")" }'
}

haproxy_common() {
	cat <<CFG
global
	nbthread $WORKERS
	maxconn $(((NOFILE - 200) / 2))
	tune.ssl.cachesize 0
	ssl-server-verify required
defaults
	mode tcp
	timeout connect 5s
	timeout client 1h
	timeout server 1h
CFG
}

haproxy_start() {
	local dir=$1
	read -r IN_PORT OUT_PORT < <(free_ports 2)
	SYS_PIDS=()
	SYS_LOGS=("$dir/inbound.log" "$dir/outbound.log")
	{
		haproxy_common
		cat <<CFG
frontend inbound
	bind 127.0.0.1:$IN_PORT ssl crt $K_PEM/server-bundle.pem ca-file $K_PEM/server-ca.pem verify required ssl-min-ver TLSv1.3 ciphersuites TLS_AES_128_GCM_SHA256 no-tls-tickets
	default_backend app
backend app
	server app 127.0.0.1:$BACKEND_PORT
CFG
	} >"$dir/inbound.cfg"
	{
		haproxy_common
		cat <<CFG
frontend outbound
	bind 127.0.0.1:$OUT_PORT
	default_backend peer
backend peer
	server peer 127.0.0.1:$IN_PORT ssl crt $K_PEM/client-bundle.pem ca-file $K_OUT_CA_PEM verify required ssl-min-ver TLSv1.3 ciphersuites TLS_AES_128_GCM_SHA256 no-ssl-reuse
CFG
	} >"$dir/outbound.cfg"
	spawn "$dir/inbound.log" haproxy -db -f "$dir/inbound.cfg"
	SYS_PIDS+=("$SPAWNED_PID")
	wait_listen "$IN_PORT" 20 "$SPAWNED_PID" || {
		cat "$dir/inbound.log" >&2
		return 1
	}
	spawn "$dir/outbound.log" haproxy -db -f "$dir/outbound.cfg"
	SYS_PIDS+=("$SPAWNED_PID")
	wait_listen "$OUT_PORT" 20 "$SPAWNED_PID" || {
		cat "$dir/outbound.log" >&2
		return 1
	}
}
