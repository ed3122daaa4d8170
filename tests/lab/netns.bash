# shellcheck shell=bash
# Network namespaces for a lab script (sourced; not a test: run-tests.sh runs *.sh only).
#
# Set before sourcing: p, a prefix unique to this run (e.g. fpxx$$), the namespaces being
# "$p-NAME"; tmp, the script's own temporary directory (its *.log files are shown when it
# bails out, a bpffs may be mounted on $tmp/bpf). The script appends each background
# process it starts to pids. Sourcing installs the exit trap, netns_cleanup: SIGTERM to
# pids (flowpin's daemons and agents undo their changes on it) and a wait, then whatever
# still runs in the namespaces is killed and they are deleted, $tmp/bpf is unmounted
# and $tmp removed. Everything lives in namespaces the script creates (netns_add).

pids=()
netns_names=()

netns_cleanup() {
	local pid ns
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null
	done
	wait 2>/dev/null
	for ns in "${netns_names[@]}"; do
		# Anything still running in our namespaces was started by this script.
		for pid in $(ip netns pids "$p-$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
		ip netns del "$p-$ns" 2>/dev/null
	done
	umount "$tmp/bpf" 2>/dev/null
	rm -rf "$tmp"
}
trap netns_cleanup EXIT
trap 'exit 1' INT TERM

die() {
	echo "Bail out! $*"
	for f in "$tmp"/*.log; do
		[ -f "$f" ] && sed "s|^|# $(basename "$f"): |" "$f"
	done
	exit 1
}

in_ns() { # name command...
	local ns=$1
	shift
	ip netns exec "$p-$ns" "$@"
}

netns_add() { # name... : namespaces "$p-NAME", lo up in each, removed on exit
	local ns
	for ns in "$@"; do
		netns_names+=("$ns")
		ip netns add "$p-$ns" || die "cannot create namespace $p-$ns"
		ip -n "$p-$ns" link set lo up
	done
}
