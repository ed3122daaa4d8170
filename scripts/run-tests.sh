#!/usr/bin/env bash
# Runs every test tier that exists and prints one summary line:
#   N passed, N failed, N skipped
# Each test program speaks TAP (cmocka with CMOCKA_MESSAGE_OUTPUT=TAP, lab scripts by
# hand). A program that exits non-zero without reporting a failure counts as one
# failure; a program that reports nothing at all counts as one failure too.
# Tiers: unit (build/tests/unit), bpf (build/tests/bpf), lab (tests/lab/*.sh), fuzz
# (a bounded run of each fuzz target, scripts/fuzz.sh).
# TIERS="unit bpf" limits the run; TEST_FILTER=regex limits programs by name.
# BUILD_DIR=build/san runs the test programs of another build (make test-sanitize).
# SANITIZER_REPORTS=DIR: ASan/UBSan write their reports there (child processes too);
# any report fails the program during which it appeared.
set -uo pipefail
cd "$(dirname "$0")/.."

tiers=${TIERS:-unit bpf lab fuzz}
filter=${TEST_FILTER:-.}
build=${BUILD_DIR:-build}
passed=0 failed=0 skipped=0
failures=()
log_dir=$build/test-logs
mkdir -p "$log_dir"

reports=${SANITIZER_REPORTS:-}
if [ -n "$reports" ]; then
	mkdir -p "$reports"
	reports=$(cd "$reports" && pwd)
	# Report to files: a child's stderr may be swallowed by the test that ran it.
	export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
	export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
fi

run_one() { # tier name command...
	local tier=$1 name=$2
	shift 2
	local log="$log_dir/$tier-$name.log"
	printf '== %s/%s\n' "$tier" "$name"
	[ -z "$reports" ] || rm -f "$reports"/*
	CMOCKA_MESSAGE_OUTPUT=TAP "$@" >"$log" 2>&1
	local rc=$?
	if [ -n "$reports" ] && compgen -G "$reports/*" >/dev/null; then
		# One "not ok" per report file, so even a report in a passing test fails.
		for r in "$reports"/*; do
			echo "not ok - sanitizer report ($(basename "$r")): $(grep -m1 -E 'ERROR|runtime error' "$r")" >>"$log"
			sed 's/^/# /' "$r" >>"$log"
		done
		rm -f "$reports"/*
	fi
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
		for t in "$build"/tests/$tier/test_*; do
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
	fuzz)
		# Seeds, then a short mutation run per target (scripts/fuzz.sh: about a minute).
		for name in $(bash scripts/fuzz.sh --list); do
			[[ $name =~ $filter ]] || continue
			run_one fuzz "$name" bash scripts/fuzz.sh --tap "$name"
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
