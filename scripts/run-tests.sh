#!/usr/bin/env bash
# Runs every test tier that exists and prints one summary line:
#   N passed, N failed, N skipped
# Each test program speaks TAP (cmocka with CMOCKA_MESSAGE_OUTPUT=TAP, lab scripts by
# hand). A program that exits non-zero without reporting a failure counts as one
# failure; a program that reports nothing at all counts as one failure too.
# Tiers: unit (build/tests/unit), bpf (build/tests/bpf), lab (tests/lab/*.sh).
# TIERS="unit bpf" limits the run; TEST_FILTER=regex limits programs by name.
set -uo pipefail
cd "$(dirname "$0")/.."

tiers=${TIERS:-unit bpf lab}
filter=${TEST_FILTER:-.}
passed=0 failed=0 skipped=0
failures=()
log_dir=build/test-logs
mkdir -p "$log_dir"

run_one() { # tier name command...
	local tier=$1 name=$2
	shift 2
	local log="$log_dir/$tier-$name.log"
	printf '== %s/%s\n' "$tier" "$name"
	CMOCKA_MESSAGE_OUTPUT=TAP "$@" >"$log" 2>&1
	local rc=$?
	local p f s
	# cmocka 1.1 reports a skip() as "not ok N # SKIP name"; scripts write "ok N # SKIP".
	local ok_skip not_ok_skip
	p=$(grep -cE '^ok [0-9]+' "$log")
	f=$(grep -cE '^not ok [0-9]+' "$log")
	ok_skip=$(grep -cE '^ok [0-9]+.*# ?SKIP' "$log")
	not_ok_skip=$(grep -cE '^not ok [0-9]+.*# ?SKIP' "$log")
	s=$((ok_skip + not_ok_skip))
	p=$((p - ok_skip))
	f=$((f - not_ok_skip))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "not ok - $tier/$name exited with status $rc" >>"$log"
	fi
	if [ $((p + f + s)) -eq 0 ]; then
		f=1
		echo "not ok - $tier/$name reported no results" >>"$log"
	fi
	grep -E '^(not ok|ok .*# ?SKIP)' "$log" | sed 's/^/   /'
	if [ "$f" -gt 0 ]; then
		failures+=("$tier/$name (log: $log)")
		sed 's/^/   | /' "$log" | tail -n 40
	fi
	printf '   %d passed, %d failed, %d skipped\n' "$p" "$f" "$s"
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

for tier in $tiers; do
	case $tier in
	unit | bpf)
		for t in build/tests/$tier/test_*; do
			[ -x "$t" ] || continue
			name=$(basename "$t")
			[[ $name =~ $filter ]] || continue
			run_one "$tier" "$name" "$t"
		done
		;;
	lab)
		for t in tests/lab/*.sh; do
			[ -f "$t" ] || continue
			name=$(basename "$t" .sh)
			[[ $name =~ $filter ]] || continue
			run_one lab "$name" bash "$t"
		done
		;;
	esac
done

if [ ${#failures[@]} -gt 0 ]; then
	echo "failed:"
	printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
