# shellcheck shell=bash
# One etcd member for a lab script, in one of its namespaces (sourced after netns.bash;
# not a test: run-tests.sh runs *.sh only).
#
# Set before sourcing: ETCD_NS, the namespace (netns.bash's NAME) etcd and the fleet
# commands run in; PORT, etcd's client port on 127.0.0.1 there (PORT + 1: peers); URL,
# etcd://127.0.0.1:$PORT/PREFIX; FLOWPIN. etcd's data is in $tmp/etcd, its log
# $tmp/etcd.log; etcd_start appends its pid to pids (netns.bash's trap stops it).

etcd_start() {
	ip netns exec "$p-$ETCD_NS" etcd --name t --data-dir "$tmp/etcd" \
		--listen-client-urls "http://127.0.0.1:$PORT" --advertise-client-urls "http://127.0.0.1:$PORT" \
		--listen-peer-urls "http://127.0.0.1:$((PORT + 1))" \
		--initial-advertise-peer-urls "http://127.0.0.1:$((PORT + 1))" \
		--initial-cluster "t=http://127.0.0.1:$((PORT + 1))" \
		--quota-backend-bytes 67108864 >>"$tmp/etcd.log" 2>&1 &
	etcd_pid=$!
	pids+=("$etcd_pid")
	for _ in $(seq 100); do
		in_ns "$ETCD_NS" curl -sf -m 1 "http://127.0.0.1:$PORT/health" >/dev/null && return 0
		sleep 0.1
	done
	die "etcd did not start"
}
etcd_stop() {
	kill "$etcd_pid"
	wait "$etcd_pid" 2>/dev/null
}
fleet() { in_ns "$ETCD_NS" "$FLOWPIN" fleet "$@"; }
etcdctl_() { in_ns "$ETCD_NS" env ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$PORT" "$@"; }
# PREFIX/config's revision, as fleet status reads it.
config_rev() { fleet status --config "$URL" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["config_revision"])'; }
# One field of NODE's status in etcd ('' when NODE has none).
fleet_node_field() { # node field
	fleet status --config "$URL" --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
n = [x for x in d['nodes'] if x['node'] == '$1']
print(n[0].get('$2', '') if n else '')"
}
wait_for() { # seconds command...
	local t=$1
	shift
	for _ in $(seq $((t * 10))); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
