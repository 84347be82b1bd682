#!/bin/sh
# memory.sh measures one real drago agent's memory with 100 peers (issue 16).
#
# A real "drago server" runs in this namespace on a veth into a network
# namespace where a real "drago agent" runs with the embedded wireguard-go
# (-backend userspace) in a private mount namespace with its own
# /run/wireguard. The network has 100 plain devices (drago device add), so
# the agent holds 100 peers. Every CHANGE seconds one device is added and
# the previous extra one deleted (101 <-> 100 peers, each a real wireguard-go
# peer added and removed). Every 10 s the agent's VmRSS, RssAnon, RssFile and
# Go's own figures (runtime.MemStats through the agent's -pprof-addr) are
# appended to OUT/samples.tsv. At the end the least-squares slope of VmRSS
# (KiB per hour) over the samples after the first WARMUP seconds is printed.
#
# Run as root:
#   sudo agent/e2e/memory.sh -bin /tmp/drago -secs 1200 -change 60 -out /tmp/mem [-- agent flags]
# Environment for the agent (GODEBUG, GOGC, GOMEMLIMIT) passes through; -agent-bin
# runs another binary that takes drago agent's flags (e.g. an agent-only build).
# Everything it creates (processes, namespace, veth, temp dirs) is removed on exit.
set -eu

bin=/tmp/drago agentbin= secs=300 change=60 out=/tmp/drago-mem-out prefix=dgm net=172.31.88 warmup=120 peers=100
while [ $# -gt 0 ]; do
	case $1 in
	-bin) bin=$2; shift 2 ;;
	-secs) secs=$2; shift 2 ;;
	-change) change=$2; shift 2 ;;
	-out) out=$2; shift 2 ;;
	-prefix) prefix=$2; shift 2 ;; # namespace/veth prefix, for runs side by side
	-net) net=$2; shift 2 ;;       # underlay /24 as a.b.c
	-warmup) warmup=$2; shift 2 ;;
	-peers) peers=$2; shift 2 ;;
	-agent-bin) agentbin=$2; shift 2 ;; # runs the agent instead of "BIN agent": same flags
	--) shift; break ;;
	*) echo "memory.sh: unknown flag $1" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "memory.sh: run as root" >&2; exit 1; }

mkdir -p "$out"
work=$(mktemp -d /tmp/drago-memwork-XXXXXX)
ns=$prefix-agent veth=$prefix-r port=18${net##*.}
spid= apid=
cleanup() {
	[ -n "$apid" ] && kill "$apid" 2>/dev/null && sleep 1
	[ -n "$spid" ] && kill "$spid" 2>/dev/null
	wait 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	ip link del "$veth" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM
ip netns del "$ns" 2>/dev/null || true
ip link del "$veth" 2>/dev/null || true

ip netns add "$ns"
ip link add "$veth" type veth peer name eth0 netns "$ns"
ip addr add "$net.1/24" dev "$veth"
ip link set "$veth" up
ip -n "$ns" addr add "$net.2/24" dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" link set lo up

"$bin" server -addr "$net.1:$port" -data-dir "$work/server" >"$out/server.log" 2>&1 &
spid=$!
export DRAGO_ADDR="http://$net.1:$port"
i=0
until [ -s "$work/server/root-token" ] && "$bin" network list -token-file "$work/server/root-token" >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "server did not start" >&2; cat "$out/server.log" >&2; exit 1; }
	sleep 0.1
done
export DRAGO_TOKEN_FILE="$work/server/root-token"
"$bin" network create -name mem -ipv4-range 10.88.0.0/16 -topology mesh >/dev/null
join=$("$bin" join-token create -network mem -json | jq -r .secret)
for i in $(seq 1 "$peers"); do
	"$bin" device add -network mem -name "d$i" >/dev/null
done

ip netns exec "$ns" unshare -m --propagation private sh -c \
	'mount -t tmpfs none /run/wireguard && exec "$@"' sh \
	${agentbin:-$bin agent} -server "$DRAGO_ADDR" -join "$join" -data-dir "$work/agent" -name memhost \
	-backend userspace -pprof-addr 127.0.0.1:6061 "$@" >"$out/agent.log" 2>&1 &
apid=$!

npeers() { nsenter -t "$apid" -m -n wg show all peers 2>/dev/null | wc -l; }
i=0
until [ "$(npeers)" -ge "$peers" ]; do
	i=$((i + 1)); [ $i -lt 300 ] || { echo "agent did not reach $peers peers" >&2; tail -20 "$out/agent.log" >&2; exit 1; }
	sleep 0.1
done
echo "agent pid $apid has $(npeers) peers" >&2

# memstat prints HeapInuse HeapIdle HeapReleased StackInuse Sys NumGC (KiB,
# NumGC a count) from the agent's heap profile.
memstat() {
	nsenter -t "$apid" -n curl -s --max-time 5 "http://127.0.0.1:6061/debug/pprof/heap?debug=1" | awk '
		/^# HeapInuse/ {hi=$4} /^# HeapIdle/ {hd=$4} /^# HeapReleased/ {hr=$4}
		/^# Stack / {si=$4} /^# Sys / {sys=$4} /^# NumGC/ {n=$4}
		END {printf "%d\t%d\t%d\t%d\t%d\t%d", hi/1024, hd/1024, hr/1024, si/1024, sys/1024, n}'
}
status() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$apid/status"; }
# cputicks prints the agent's user+system CPU time in clock ticks (USER_HZ, 100/s).
cputicks() { sed 's/.*) //' "/proc/$apid/stat" | awk '{print $12 + $13}'; }

printf 't_s\tpeers\tVmRSS_KiB\tRssAnon_KiB\tRssFile_KiB\tHeapInuse_KiB\tHeapIdle_KiB\tHeapReleased_KiB\tStackInuse_KiB\tSys_KiB\tNumGC\tthreads\tcpu_ticks\n' >"$out/samples.tsv"
start=$(date +%s) next_change=$change n=0 extra=
while :; do
	t=$(($(date +%s) - start))
	[ "$t" -le "$secs" ] || break
	if [ "$change" -gt 0 ] && [ "$t" -ge "$next_change" ]; then
		n=$((n + 1))
		# A failed call is logged, not fatal: the sampling goes on.
		id=$("$bin" device add -network mem -name "x$n" -json | jq -r .device.id) || true
		if [ -n "$extra" ] && ! "$bin" device delete "$extra" >/dev/null; then
			echo "t=$t: deleting device $extra failed" >&2
		fi
		case $id in '' | null) echo "t=$t: adding device x$n failed" >&2; extra= ;; *) extra=$id ;; esac
		next_change=$((next_change + change))
	fi
	printf '%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$(npeers)" "$(status VmRSS)" "$(status RssAnon)" "$(status RssFile)" "$(memstat)" "$(status Threads)" "$(cputicks)" >>"$out/samples.tsv"
	sleep 10
done
kill -0 "$apid" || { echo "the agent died" >&2; exit 1; }
nsenter -t "$apid" -n curl -s -o "$out/heap.pprof" "http://127.0.0.1:6061/debug/pprof/heap" || true
nsenter -t "$apid" -n curl -s -o "$out/goroutine.txt" "http://127.0.0.1:6061/debug/pprof/goroutine?debug=1" || true
awk -v w="$warmup" -F'\t' 'NR > 1 && $1 >= w {n++; x=$1/3600; y=$3; sx+=x; sy+=y; sxx+=x*x; sxy+=x*y; if (min==""||y<min) min=y; if (y>mx) mx=y}
	END {if (n < 2) {print "too few samples"; exit}
		b=(n*sxy-sx*sy)/(n*sxx-sx*sx); printf "samples %d after %ds: VmRSS mean %.0f KiB, min %d, max %d, slope %.0f KiB/h\n", n, w, sy/n, min, mx, b}' "$out/samples.tsv" | tee "$out/summary.txt"
awk -v w="$warmup" -F'\t' 'NR > 1 && $1 >= w {if (t0 == "") {t0=$1; c0=$13; g0=$11} t1=$1; c1=$13; g1=$11}
	END {if (t1 > t0) printf "CPU %.2f %% of one core, %d GCs in %d s\n", (c1-c0)/(t1-t0), g1-g0, t1-t0}' "$out/samples.tsv" | tee -a "$out/summary.txt"
