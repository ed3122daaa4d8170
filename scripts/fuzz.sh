#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz (tests/fuzz/README.md).
#
#   scripts/fuzz.sh --available    exit 0 when clang can build libFuzzer targets
#   scripts/fuzz.sh --list         the targets of the bounded run (the `fuzz` test tier)
#   scripts/fuzz.sh --tap NAME     bounded run of one target, TAP output (scripts/run-tests.sh)
#   scripts/fuzz.sh --long [NAME...]  FUZZ_SECONDS (default 600) per target, every target
#                                  by default; run it under the heavy-job lock
#
# Each run: the seeds once (committed corpus tests/fuzz/corpus/<target>/, plus seeds the
# target writes itself from tests/common/pkt.h frames), then a mutation run. A crash, a
# sanitizer report, a timeout or an oracle violation (the target aborts, saying why)
# fails the run; libFuzzer saves the input under build/fuzz/crashes/<target>/ and the
# report names that reproducer. Re-run one input: build/fuzz/bin/<target> FILE.
# Targets that load BPF programs need root; without it they are reported skipped.
set -uo pipefail
cd "$(dirname "$0")/.."

build=${BUILD_DIR:-build}
bin_dir=$build/fuzz/bin
CLANG=${CLANG:-clang}

# Targets of the bounded run (the `fuzz` test tier) and their seconds of mutation:
# 45 s of mutation in all; with the seeds and each target's set-up the tier takes about a
# minute.
tier_targets=(fuzz_config fuzz_lb fuzz_backend)
declare -A tier_seconds=([fuzz_config]=10 [fuzz_lb]=20 [fuzz_backend]=15)
declare -A needs_root=([fuzz_lb]=1 [fuzz_backend]=1)

available() {
	local tmp rc
	tmp=$(mktemp -d)
	printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return !d + !n; }\n' \
		>"$tmp/t.c"
	"$CLANG" -fsanitize=fuzzer,address,undefined "$tmp/t.c" -o "$tmp/t" >/dev/null 2>&1
	rc=$?
	rm -rf "$tmp"
	return $rc
}

all_targets() {
	local f
	for f in tests/fuzz/fuzz_*.c; do
		[ -f "$f" ] && basename "$f" .c
	done
}

# run_target NAME SECONDS TAP_START: prints TAP lines from TAP_START; returns failures.
run_target() {
	local name=$1 seconds=$2 n=$3 fails=0
	local bin=$bin_dir/$name short=${1#fuzz_}
	local crashes=$build/fuzz/crashes/$name seeds=$build/fuzz/seeds/$name
	local work=$build/fuzz/corpus/$name log=$build/fuzz/logs/$name
	local corpora=()

	if [ ! -x "$bin" ]; then
		echo "ok $n # SKIP $name: not built (clang's libFuzzer runtime missing?)"
		echo "ok $((n + 1)) # SKIP $name: not built"
		return 0
	fi
	if [ -n "${needs_root[$name]:-}" ] && [ "$(id -u)" -ne 0 ]; then
		echo "ok $n # SKIP $name: needs root (loads BPF programs in a network namespace)"
		echo "ok $((n + 1)) # SKIP $name: needs root"
		return 0
	fi
	mkdir -p "$crashes" "$seeds" "$work" "$(dirname "$log")"
	[ -d "tests/fuzz/corpus/$short" ] && corpora+=("tests/fuzz/corpus/$short")
	# Targets that build their seed frames write them here and exit (tests/fuzz/*.c).
	rm -f "$seeds"/*
	FP_FUZZ_WRITE_SEEDS=$seeds "$bin" >"$log.seeds-gen" 2>&1 || {
		echo "not ok $n - $name: writing its seeds failed (log: $log.seeds-gen)"
		sed 's/^/# /' "$log.seeds-gen" | tail -n 20
		echo "not ok $((n + 1)) - $name: not run"
		return 2
	}
	compgen -G "$seeds/*" >/dev/null && corpora+=("$seeds")

	local opts=(-artifact_prefix="$crashes/" -timeout=10 -rss_limit_mb=4096
		-print_final_stats=1)
	[ -f "tests/fuzz/$short.dict" ] && opts+=(-dict="tests/fuzz/$short.dict")

	# 1. Every seed once: a regression in a known input fails here, deterministically.
	"$bin" "${opts[@]}" -runs=0 "${corpora[@]}" >"$log.seeds" 2>&1
	if report "$?" "$log.seeds" "$n" "$name: seeds (${corpora[*]})"; then :; else fails=1; fi

	# 2. Mutation run from the seeds and what earlier runs kept (corpus in build/fuzz).
	"$bin" "${opts[@]}" -max_total_time="$seconds" "$work" "${corpora[@]}" >"$log.run" 2>&1
	if report "$?" "$log.run" "$((n + 1))" "$name: ${seconds} s mutation run"; then :; else
		fails=$((fails + 1))
	fi
	return $fails
}

# report RC LOG N TEXT: one TAP line for a libFuzzer run; details as comments.
report() {
	local rc=$1 log=$2 n=$3 text=$4 runs repro
	runs=$(grep -oE '^Done [0-9]+ runs' "$log" | tail -n1 | grep -oE '[0-9]+')
	[ -n "$runs" ] || runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" |
		grep -oE '[0-9]+$')
	if [ "$rc" -eq 0 ]; then
		echo "ok $n - $text: ${runs:-?} inputs, no crash, no oracle violation"
		return 0
	fi
	repro=$(grep -oE '(Test unit written to|artifact_prefix.*Test unit written to) [^ ]+' "$log" |
		tail -n1 | awk '{print $NF}')
	echo "not ok $n - $text: failed (exit $rc)${repro:+, reproducer: $repro}"
	[ -n "$repro" ] && echo "# re-run it: $bin_dir/$(basename "$(dirname "$repro")") $repro"
	echo "# log: $log"
	# The first report and its stack; the full output is in the log.
	grep -A30 -m1 -E 'FUZZ ORACLE|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error' \
		"$log" | grep -vE '^(0x|stat::|Base64|MS: )' | head -n 30 | sed 's/^/#   /'
	return 1
}

case ${1:-} in
--available)
	available
	;;
--list)
	printf '%s\n' "${tier_targets[@]}"
	;;
--tap)
	name=${2:?target name}
	echo "1..2"
	run_target "$name" "${tier_seconds[$name]:-20}" 1
	[ $? -eq 0 ]
	;;
--long)
	shift
	targets=("$@")
	[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(all_targets)
	n=1 failed=0
	echo "1..$((2 * ${#targets[@]}))"
	for t in "${targets[@]}"; do
		run_target "$t" "${FUZZ_SECONDS:-600}" "$n" || failed=1
		n=$((n + 2))
	done
	[ "$failed" -eq 0 ] && echo "fuzz: no crash, no oracle violation" ||
		echo "fuzz: FAILED (reproducers under $build/fuzz/crashes/)"
	[ "$failed" -eq 0 ]
	;;
*)
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
