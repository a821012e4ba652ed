# bench/systems/stunnel.sh: the stunnel pair (one process per side; stunnel
# runs a thread per connection, so it has no worker count to set).
#
# Same trust as peerproxy: the client presents leaf + cross certificate and
# trusts only node1's root; the server demands a client chain and verifies
# it against its own root alone (OpenSSL enforces the cross certificate's
# name constraints).  stunnel cannot check the server's peer id
# (serialNumber); it has checkHost/checkIP only, and the Swaptacular leaf
# has no host name, so the client checks the chain only.  Resumption is off
# on both sides so every tunnel is a full handshake; TLS 1.3 with
# TLS_AES_128_GCM_SHA256, the suite BoringSSL picks on AES hardware
# (OpenSSL would otherwise prefer AES-256-GCM).

stunnel_version() {
	stunnel4 -version 2>&1 | awk '/^stunnel/ { s = $1 " " $2 } /^Running/ { r = $3 " " $4 } END { print s " (" r ")" }'
}

stunnel_common() {
	cat <<CFG
foreground = yes
pid =
debug = 4
CFG
}

stunnel_start() {
	local dir=$1
	read -r IN_PORT OUT_PORT < <(free_ports 2)
	SYS_PIDS=()
	SYS_LOGS=("$dir/inbound.log" "$dir/outbound.log")
	{
		stunnel_common
		cat <<CFG
[inbound]
accept = 127.0.0.1:$IN_PORT
connect = 127.0.0.1:$BACKEND_PORT
cert = $K_PEM/server-cert.pem
key = $K_PEM/server-key.pem
CAfile = $K_PEM/server-ca.pem
verifyChain = yes
requireCert = yes
sslVersionMin = TLSv1.3
ciphersuites = TLS_AES_128_GCM_SHA256
options = NO_TICKET
config = NumTickets:0
sessionCacheSize = 1
sessionResume = no
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
TIMEOUTidle = 3600
CFG
	} >"$dir/inbound.conf"
	{
		stunnel_common
		cat <<CFG
[outbound]
client = yes
accept = 127.0.0.1:$OUT_PORT
connect = 127.0.0.1:$IN_PORT
cert = $K_PEM/client-chain.pem
key = $K_PEM/client-key.pem
CAfile = $K_OUT_CA_PEM
verifyChain = yes
sslVersionMin = TLSv1.3
ciphersuites = TLS_AES_128_GCM_SHA256
sessionResume = no
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
TIMEOUTidle = 3600
CFG
	} >"$dir/outbound.conf"
	spawn "$dir/inbound.log" stunnel4 "$dir/inbound.conf"
	SYS_PIDS+=("$SPAWNED_PID")
	wait_listen "$IN_PORT" 20 "$SPAWNED_PID" || {
		cat "$dir/inbound.log" >&2
		return 1
	}
	spawn "$dir/outbound.log" stunnel4 "$dir/outbound.conf"
	SYS_PIDS+=("$SPAWNED_PID")
	wait_listen "$OUT_PORT" 20 "$SPAWNED_PID" || {
		cat "$dir/outbound.log" >&2
		return 1
	}
}
