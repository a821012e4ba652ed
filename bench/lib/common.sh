# bench/lib/common.sh: logging, ports, the process registry and cleanup,
# bounded waits, and /proc readings shared by the bench scripts.
# Sourced by bench/run; expects $WORK (a private temp dir) to be set.

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
warn() { printf '[bench %s] WARNING: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
	printf '[bench] ERROR: %s\n' "$*" >&2
	exit 1
}

# ---- processes -------------------------------------------------------------
# Everything the harness starts in the background goes through spawn, so
# that cleanup can find it (and its children) again, even after a failure
# or Ctrl-C.

# spawn LOGFILE CMD ARGS...: start CMD in the background, output to
# LOGFILE; sets SPAWNED_PID.  CMD runs under timeout(1), so that even if
# the harness itself is killed (SIGKILL, no trap), nothing it started
# outlives SPAWN_LIFETIME seconds.
SPAWN_LIFETIME=${SPAWN_LIFETIME:-7200}
spawn() {
	local logfile=$1
	shift
	timeout -k 5 "$SPAWN_LIFETIME" "$@" >"$logfile" 2>&1 </dev/null &
	SPAWNED_PID=$!
	echo "$SPAWNED_PID" >>"$WORK/pids"
}

# descendants PID: PID and every process below it, one per line.
descendants() {
	ps -e -o pid= -o ppid= | awk -v root="$1" '
		{ parent[$1] = $2 }
		END {
			keep[root] = 1; print root
			changed = 1
			while (changed) {
				changed = 0
				for (p in parent)
					if (!(p in keep) && (parent[p] in keep)) {
						keep[p] = 1; print p; changed = 1
					}
			}
		}'
}

# alive PID: the process exists and is not a zombie (a child of ours that
# exited stays a zombie until waited for, and kill -0 still finds it).
alive() {
	local st
	st=$(sed -n 's/^[0-9]* (.*) \([A-Z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# kill_tree PID...: TERM each process and its descendants, wait up to 3 s,
# then KILL what is left.  Only processes the harness started are passed
# here.
kill_tree() {
	local all=() p
	for p in "$@"; do
		[ -n "$p" ] && alive "$p" || continue
		mapfile -t -O "${#all[@]}" all < <(descendants "$p")
	done
	[ ${#all[@]} -gt 0 ] || return 0
	kill -TERM "${all[@]}" 2>/dev/null || true
	for _ in $(seq 30); do
		local alive=0
		for p in "${all[@]}"; do
			alive "$p" && alive=1 && break
		done
		[ $alive -eq 0 ] && break
		sleep 0.1
	done
	kill -KILL "${all[@]}" 2>/dev/null || true
	for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# cleanup_all: kill everything spawn started (in reverse order).
cleanup_all() {
	[ -n "${WORK:-}" ] && [ -f "$WORK/pids" ] || return 0
	local pids
	mapfile -t pids < <(tac "$WORK/pids")
	kill_tree "${pids[@]}"
	: >"$WORK/pids"
}

# ---- bounded waits ---------------------------------------------------------

# wait_for_line FILE REGEX SECONDS [PID]: until FILE has a line matching
# REGEX; fails after SECONDS or when PID (if given) has exited.
wait_for_line() {
	local file=$1 re=$2 secs=$3 pid=${4:-} i
	for ((i = 0; i < secs * 20; i++)); do
		grep -qE "$re" "$file" 2>/dev/null && return 0
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			grep -qE "$re" "$file" 2>/dev/null && return 0
			return 1
		fi
		sleep 0.05
	done
	return 1
}

# is_listening PORT: something listens on 127.0.0.1:PORT (or any address).
is_listening() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 }
		END { exit !f }' /proc/net/tcp /proc/net/tcp6
}

# wait_listen PORT SECONDS [PID]
wait_listen() {
	local port=$1 secs=$2 pid=${3:-} i
	for ((i = 0; i < secs * 20; i++)); do
		is_listening "$port" && return 0
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		sleep 0.05
	done
	return 1
}

# free_ports N: N distinct unused TCP ports below the ephemeral range, so
# that the load's own outgoing connections never take them.
free_ports() {
	/usr/bin/python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
out = []
while len(out) < n:
    p = random.randint(20000, 32000)
    if p in out:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        out.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(" ".join(map(str, out)))
PY
}

# ---- /proc readings --------------------------------------------------------

# tree_pids PID...: the given processes and all their descendants.
tree_pids() {
	local p
	for p in "$@"; do descendants "$p"; done | sort -un
}

# cpu_ticks PID...: "user system" clock ticks of these processes (all
# their threads, including exited ones) and their descendants.
cpu_ticks() {
	local p user=0 sys=0 stat rest
	for p in $(tree_pids "$@"); do
		stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		rest=${stat##*) } # past "pid (comm) "
		# shellcheck disable=SC2086
		set -- $rest
		user=$((user + ${12}))
		sys=$((sys + ${13}))
	done
	echo "$user $sys"
}

# rss_kb PID...: summed VmRSS of these processes and their descendants.
rss_kb() {
	local p total=0 kb
	for p in $(tree_pids "$@"); do
		kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
		total=$((total + ${kb:-0}))
	done
	echo "$total"
}

CLK_TCK=$(getconf CLK_TCK)

# kv KEY LINE: the value of KEY in a "k=v k=v" line.
kv() {
	sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2" | head -1
}
