# bench/lib/setup.sh: build peerproxy and the bench tools, install the
# comparison systems, make the PKIs, describe the machine.
# Sourced by bench/run; uses $TOP, $BENCH, $WORK, $BUILD.

# Debian packages the harness needs, by the command that proves each.
# On Debian 12 the nginx binary package has the stream module as a
# dynamic module in its own package, libnginx-mod-stream (which nginx-full
# merely depends on): the bench installs nginx + libnginx-mod-stream.
declare -A BENCH_PKG_FOR=(
	[cmake]=cmake [ninja]=ninja-build [cc]=gcc [clang]=clang
	[openssl]=openssl [stunnel4]=stunnel4 [haproxy]=haproxy
	[nginx]=nginx [ss]=iproute2 [ps]=procps [python3]=python3
)

install_missing() {
	local want=("$@") missing=() cmd
	for cmd in "${want[@]}"; do
		case $cmd in
		python3) [ -x /usr/bin/python3 ] && continue ;;
		*) command -v "$cmd" >/dev/null 2>&1 && continue ;;
		esac
		missing+=("${BENCH_PKG_FOR[$cmd]}")
	done
	# Build dependencies of peerproxy (headers, not commands).
	for pkg in libuv1-dev libhttp-parser-dev; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null |
			grep -q "ok installed" || missing+=("$pkg")
	done
	# The nginx stream module, only when nginx is wanted.
	if printf '%s\n' "${want[@]}" | grep -qx nginx &&
		[ ! -e /usr/lib/nginx/modules/ngx_stream_module.so ]; then
		missing+=(libnginx-mod-stream)
	fi
	[ ${#missing[@]} -gt 0 ] || return 0
	log "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	timeout 300 apt-get update -qq || die "apt-get update failed"
	# policy-rc.d keeps the packages' services from starting: the bench
	# runs its own instances with its own configuration.
	local policy=/usr/sbin/policy-rc.d created=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		created=1
	fi
	timeout 600 apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >"$WORK/apt.log" 2>&1 || {
		[ $created -eq 1 ] && rm -f "$policy"
		tail -20 "$WORK/apt.log" >&2
		die "apt-get install ${missing[*]} failed"
	}
	[ $created -eq 1 ] && rm -f "$policy"
	return 0
}

# build_peerproxy: a Release build in $BUILD; sets PEERPROXY_BIN.
build_peerproxy() {
	local choice=${PEERPROXY_BORINGSSL:-source}
	log "building peerproxy (Release, BoringSSL: $choice) in $BUILD"
	# Configure only when the build tree is new or set up otherwise (ninja
	# re-runs cmake by itself when CMakeLists change).
	if [ -f "$BUILD/build.ninja" ] &&
		grep -qx "PEERPROXY_BORINGSSL:STRING=$choice" "$BUILD/CMakeCache.txt" &&
		grep -qx "CMAKE_BUILD_TYPE:STRING=Release" "$BUILD/CMakeCache.txt" &&
		grep -qx "PEERPROXY_TESTS:BOOL=OFF" "$BUILD/CMakeCache.txt"; then
		:
	else
		timeout 900 cmake -S "$TOP" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
			-DPEERPROXY_TESTS=OFF -DPEERPROXY_BORINGSSL="$choice" \
			>"$WORK/cmake.log" 2>&1 || {
			tail -30 "$WORK/cmake.log" >&2
			die "cmake failed (log above)"
		}
	fi
	timeout 900 ninja -C "$BUILD" peerproxy >"$WORK/ninja.log" 2>&1 || {
		tail -30 "$WORK/ninja.log" >&2
		die "building peerproxy failed (log above)"
	}
	PEERPROXY_BIN="$BUILD/peerproxy"
	"$PEERPROXY_BIN" version >"$WORK/peerproxy-version.txt" ||
		die "$PEERPROXY_BIN version failed"
}

# bssl_link_flags: compiler flags that link a program against the very
# BoringSSL peerproxy was built with (read from the build's own commands).
bssl_link_flags() {
	local cmds inc lib
	cmds=$(ninja -C "$BUILD" -t commands peerproxy)
	inc=$(tr ' ' '\n' <<<"$cmds" | sed -n 's/^-I\(.*\)/\1/p' |
		while read -r d; do [ -e "$d/openssl/curve25519.h" ] && echo "$d"; done | head -1)
	lib=$(tr ' ' '\n' <<<"$cmds" | grep -E 'libcrypto\.(a|so)$' | head -1)
	[ -n "$inc" ] && [ -n "$lib" ] || return 1
	printf -- '-I%s %s -Wl,-rpath,%s -lpthread\n' "$inc" "$lib" "$(dirname "$lib")"
}

# build_tools: bench/load (always) and bench/cryptospeed (when the
# BoringSSL can be found); into $BUILD/bench/.
build_tools() {
	mkdir -p "$BUILD/bench"
	LOAD_BIN="$BUILD/bench/load"
	cc -O2 -Wall -Wextra -Werror -o "$LOAD_BIN" "$BENCH/load.c" -lpthread ||
		die "cc bench/load.c failed"
	CRYPTOSPEED_BIN=""
	local flags
	if flags=$(bssl_link_flags); then
		# shellcheck disable=SC2086
		if cc -O2 -Wall -Wextra -o "$BUILD/bench/cryptospeed" \
			"$BENCH/cryptospeed.c" $flags 2>"$WORK/cryptospeed-cc.log"; then
			CRYPTOSPEED_BIN="$BUILD/bench/cryptospeed"
		else
			warn "bench/cryptospeed.c did not build (see below); RSA-3072 ceiling from bssl speed's RSA 2048/4096 instead"
			cat "$WORK/cryptospeed-cc.log" >&2
		fi
	fi
}

# bssl_tool: the bssl command of the BoringSSL peerproxy runs on: the one
# beside the libcrypto it links (the source build's cache keeps bin/bssl
# next to lib/), else Debian's bssl-tool for Debian's library.
bssl_tool() {
	local lib root
	lib=$(ninja -C "$BUILD" -t commands peerproxy | tr ' ' '\n' |
		grep -E 'libcrypto\.(a|so)$' | head -1)
	root=$(dirname "$(dirname "$lib")")
	if [ -n "$lib" ] && [ -x "$root/bin/bssl" ]; then
		echo "$root/bin/bssl"
	elif [ -x "$root/build/tool/bssl" ]; then
		echo "$root/build/tool/bssl"
	elif [ -x /usr/bin/bssl-tool ] && grep -q 'android' <<<"$lib"; then
		echo /usr/bin/bssl-tool
	fi
}

# make_pki KEYTYPE: a two-node Swaptacular PKI in $WORK/pki-KEYTYPE, plus
# PEM-only files for the OpenSSL-based systems; sets the K_* variables
# (see the end of this function) for the systems' start functions.
make_pki() {
	local key=$1 dir="$WORK/pki-$1" pem
	if [ ! -d "$dir/node1" ]; then
		timeout 120 /usr/bin/python3 "$TOP/test/pki/pki" nodes "$dir" --nodes 2 --key "$key" \
			>"$WORK/pki-$key.log" 2>&1 || {
			cat "$WORK/pki-$key.log" >&2
			die "test/pki/pki nodes --key $key failed"
		}
	fi
	local n0="$dir/node0" n1="$dir/node1" id1
	id1=$(cat "$n1/db/nodeid")
	pem="$dir/pem"
	mkdir -p "$pem"
	# node0 is the outbound (client) side, node1 the inbound (server).
	openssl x509 -in "$n0/server.crt" -out "$pem/client-leaf.pem"
	openssl x509 -in "$n0/peers/$id1/sub-ca.crt" -out "$pem/client-cross.pem"
	cat "$pem/client-leaf.pem" "$pem/client-cross.pem" >"$pem/client-chain.pem"
	openssl pkey -in "$n0/server.key" -out "$pem/client-key.pem"
	openssl x509 -in "$n0/peers/$id1/root-ca.crt" -out "$pem/client-ca.pem"
	cat "$pem/client-chain.pem" "$pem/client-key.pem" >"$pem/client-bundle.pem"
	openssl x509 -in "$n1/server.crt" -out "$pem/server-cert.pem"
	openssl pkey -in "$n1/server.key" -out "$pem/server-key.pem"
	openssl x509 -in "$n1/root-ca.crt" -out "$pem/server-ca.pem"
	cat "$pem/server-cert.pem" "$pem/server-key.pem" >"$pem/server-bundle.pem"
	chmod 644 "$pem"/*.pem
	chmod 600 "$pem"/*key*.pem "$pem"/*bundle*.pem

	# The wrong anchor for the outbound, for the negative check: node0's
	# own root, which did not issue node1's server certificate.
	openssl x509 -in "$n0/root-ca.crt" -out "$pem/wrong-ca.pem"
	chmod 644 "$pem/wrong-ca.pem"

	K_TYPE=$key
	K_PEER_ID=$id1
	# The outbound's one trust anchor: node1's root as node0 stores it
	# (the systems read these two variables, so a check can swap them).
	K_OUT_CA="$n0/peers/$id1/root-ca.crt"
	K_OUT_CA_PEM="$pem/client-ca.pem"
	# peerproxy takes the node data files as they are.
	K_NODE0=$n0
	K_NODE1=$n1
	K_PEM=$pem
}

# machine_description: Markdown lines about this machine and every
# system's version.
machine_description() {
	local bssl
	echo "- machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
	echo "- kernel: $(uname -srm); OS: $(. /etc/os-release && echo "$PRETTY_NAME") (Debian $(cat /etc/debian_version))"
	echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: other work may run alongside)"
	echo "- peerproxy: $(awk 'NR > 1 { printf " | " } { printf "%s", $0 }' "$WORK/peerproxy-version.txt"); git $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$TOP" diff --quiet HEAD -- proxy 2>/dev/null || echo ' + uncommitted changes in proxy/')"
	bssl=$(bssl_tool)
	echo "- bssl tool: ${bssl:-none found}"
	for s in "${SYSTEMS[@]}"; do
		case $s in peerproxy | ppresume) continue ;; esac
		echo "- $(system_label "$s"): $("${s}_version")"
	done
	echo "- compiler for bench/load.c: $(cc --version | head -1)"
}
