# shellcheck shell=bash
# TAP helpers shared by tests/lab/backend_*.sh (sourced; not a test: run-tests.sh runs
# *.sh only).

n=0
failed=0

tap() { # ok|fail description [diagnostics...]
	local verdict=$1 what=$2
	shift 2
	n=$((n + 1))
	if [ "$verdict" = ok ]; then
		echo "ok $n - $what"
	else
		failed=$((failed + 1))
		echo "not ok $n - $what"
		# Every line of every diagnostic as a TAP comment, never as a result line.
		for line in "$@"; do
			printf '%s\n' "$line" | sed 's/^/# /'
		done
	fi
}

wait_for() { # file [seconds, default 10]
	local i
	for ((i = 0; i < ${2:-10} * 20; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

step() { # client-dir step -> prints the result of backend_ns_lb.py client's step
	touch "$1/go.$2"
	if wait_for "$1/result.$2" 10; then
		cat "$1/result.$2"
	else
		echo "no result"
	fi
}
