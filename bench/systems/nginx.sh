# bench/systems/nginx.sh: the nginx stream pair (a master and 2 worker
# processes per side).
#
# Same trust as peerproxy.  The inbound demands a client chain and verifies
# it against its own root alone, depth 2 (leaf, cross certificate, root).
# The outbound cannot use proxy_ssl_verify: nginx then also requires the
# server's certificate to match a host name, and the Swaptacular leaf has
# none.  So the anchor is loaded and enforced through OpenSSL itself
# (proxy_ssl_conf_command VerifyCAFile + VerifyMode Peer): the handshake
# fails unless the server chain verifies against node1's root; as with
# stunnel and HAProxy the peer id is not checked.  Resumption off on both
# sides; TLS 1.3 only, TLS_AES_128_GCM_SHA256; half-close on.

nginx_version() {
	local v o
	v=$(nginx -v 2>&1 | sed 's/^nginx version: //')
	o=$(openssl version | awk '{ print $2 }')
	echo "$v, stream module $(dpkg-query -W -f='${Version}' libnginx-mod-stream 2>/dev/null || echo '?') (OpenSSL $o)"
}

nginx_common() {
	cat <<CFG
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process on;
user root;
worker_processes $WORKERS;
worker_rlimit_nofile $NOFILE;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections $((NOFILE - 100)); }
CFG
}

nginx_start() {
	local dir=$1
	read -r IN_PORT OUT_PORT < <(free_ports 2)
	SYS_PIDS=()
	mkdir -p "$dir/in" "$dir/out"
	SYS_LOGS=("$dir/in/error.log" "$dir/out/error.log" "$dir/inbound.log" "$dir/outbound.log")
	{
		nginx_common "$dir/in"
		cat <<CFG
stream {
	server {
		listen 127.0.0.1:$IN_PORT ssl;
		ssl_certificate $K_PEM/server-cert.pem;
		ssl_certificate_key $K_PEM/server-key.pem;
		ssl_protocols TLSv1.3;
		ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
		ssl_conf_command NumTickets 0;
		ssl_session_tickets off;
		ssl_session_cache off;
		ssl_verify_client on;
		ssl_client_certificate $K_PEM/server-ca.pem;
		ssl_verify_depth 2;
		proxy_pass 127.0.0.1:$BACKEND_PORT;
		proxy_connect_timeout 5s;
		proxy_timeout 1h;
		proxy_half_close on;
	}
}
CFG
	} >"$dir/in/nginx.conf"
	{
		nginx_common "$dir/out"
		cat <<CFG
stream {
	server {
		listen 127.0.0.1:$OUT_PORT;
		proxy_pass 127.0.0.1:$IN_PORT;
		proxy_ssl on;
		proxy_ssl_certificate $K_PEM/client-chain.pem;
		proxy_ssl_certificate_key $K_PEM/client-key.pem;
		proxy_ssl_protocols TLSv1.3;
		proxy_ssl_session_reuse off;
		proxy_ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
		proxy_ssl_conf_command VerifyCAFile $K_OUT_CA_PEM;
		proxy_ssl_conf_command VerifyMode Peer;
		proxy_connect_timeout 5s;
		proxy_timeout 1h;
		proxy_half_close on;
	}
}
CFG
	} >"$dir/out/nginx.conf"
	spawn "$dir/inbound.log" nginx -p "$dir/in" -c "$dir/in/nginx.conf" -e "$dir/in/error.log"
	SYS_PIDS+=("$SPAWNED_PID")
	wait_listen "$IN_PORT" 20 "$SPAWNED_PID" || {
		cat "$dir/inbound.log" "$dir/in/error.log" >&2
		return 1
	}
	spawn "$dir/outbound.log" nginx -p "$dir/out" -c "$dir/out/nginx.conf" -e "$dir/out/error.log"
	SYS_PIDS+=("$SPAWNED_PID")
	wait_listen "$OUT_PORT" 20 "$SPAWNED_PID" || {
		cat "$dir/outbound.log" "$dir/out/error.log" >&2
		return 1
	}
}
