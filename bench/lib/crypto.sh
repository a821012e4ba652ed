# bench/lib/crypto.sh: the crypto ceiling.  `bssl speed` of the BoringSSL
# peerproxy runs on (P-256, X25519, AES-128-GCM; RSA 2048/4096 when RSA-3072
# cannot be timed directly), and bench/cryptospeed on each PKI's own keys
# (RSA-3072 is not among bssl speed's tests in BoringSSL 13).  Rows go to
# $RESULTS with section "bssl" or the key type and system "crypto";
# report.py turns them into handshakes per core.

# bssl_speed FILTER [ARGS...]: run one filtered bssl speed, record its
# lines as "bssl / <description>" = ops/s (and MB/s for ciphers).
bssl_speed() {
	local filter=$1 tool
	shift
	tool=$(bssl_tool)
	[ -n "$tool" ] || return 0
	[ "$BSSL" -eq 1 ] || return 0
	timeout 120 "$tool" speed -filter "$filter" -timeout "$BSSL_SECONDS" "$@" 2>&1 |
		tee -a "$WORK/bssl-speed.txt" |
		sed -n 's/^Did [0-9]* \(.*\) operations in [0-9]*us (\([0-9.]*\) ops\/sec)\(: \([0-9.]*\) MB\/s\)\{0,1\}$/\1\t\2\t\4/p' |
		while IFS=$'\t' read -r desc ops mbs; do
			printf 'bssl\tcrypto\t%s\t%s ops/s\t%s\n' "$CRYPTO_ROUND" "$desc" "$ops" >>"$RESULTS"
			if [ -n "$mbs" ]; then
				printf 'bssl\tcrypto\t%s\t%s MB/s\t%s\n' "$CRYPTO_ROUND" "$desc" "$mbs" >>"$RESULTS"
			fi
		done
	return 0
}

# crypto_speed [N]: one measurement of everything, recorded as round N
# (the full run measures before and after the rounds; the report keeps the
# fastest, as the machine's other load only ever slows these down).
crypto_speed() {
	local k tool
	CRYPTO_ROUND=${1:-0}
	BSSL_SECONDS=1 # bssl speed's smallest
	CRYPTO_SECONDS=1
	[ "$QUICK" -eq 0 ] || CRYPTO_SECONDS=0.3
	tool=$(bssl_tool)
	[ "$BSSL" -eq 1 ] || tool=""
	if [ "$BSSL" -eq 0 ]; then
		log "crypto ceiling: bench/cryptospeed only (--no-bssl)"
	elif [ -z "$tool" ]; then
		warn "no bssl tool for this BoringSSL: crypto ceiling from bench/cryptospeed only"
	else
		log "crypto ceiling: $tool speed"
		bssl_speed 'ECDSA P-256'
		bssl_speed 'Curve25519'
		bssl_speed 'AES-128-GCM' -chunks 16384
		if printf '%s\n' "${KEYS[@]}" | grep -qx rsa3072 && [ -z "$CRYPTOSPEED_BIN" ]; then
			bssl_speed 'RSA 2048'
			bssl_speed 'RSA 4096'
		fi
	fi
	[ -n "$CRYPTOSPEED_BIN" ] || return 0
	for k in "${KEYS[@]}"; do
		local pem="$WORK/pki-$k/pem" line
		log "crypto ceiling: bench/cryptospeed with the $k keys"
		# The server's key and leaf, the leaf's issuer (node1's root).
		line=$(timeout 60 "$CRYPTOSPEED_BIN" "$pem/server-key.pem" \
			"$pem/server-cert.pem" "$pem/server-ca.pem" "$CRYPTO_SECONDS" || true)
		echo "$k: $line" >>"$WORK/cryptospeed.txt"
		for m in sign_per_s verify_per_s certsig_per_s x25519_keygen_per_s x25519_shared_per_s; do
			local v
			v=$(kv "$m" "$line")
			[ -n "$v" ] && printf '%s\tcrypto\t%s\t%s\t%s\n' "$k" "$CRYPTO_ROUND" "$m" "$v" >>"$RESULTS"
		done
	done
	return 0
}
