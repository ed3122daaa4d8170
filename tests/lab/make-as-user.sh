#!/usr/bin/env bash
# The README's commands (`make test`, `make demo`) for someone who is not root:
# with sudo they re-run themselves under it, passing TIERS,
# TEST_FILTER and V on (sudo resets the environment); without sudo they stop at once
# with a clear message and touch nothing. Root runs them directly, never through sudo
# (a fresh Debian has none), and scripts/deps.sh needs no sudo.
# The user is nobody (setpriv, no account is created); the Makefile and scripts/ are
# copied to a scratch directory; a stand-in "sudo" records its arguments.
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
	echo "1..1"
	echo "ok 1 # SKIP needs root (to become another user with setpriv)"
	exit 0
fi
# shellcheck source=tests/lab/backend_tap.bash
source tests/lab/backend_tap.bash

tmp=$(mktemp -d /tmp/flowpin-make-as-user.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src" "$tmp/out"
cp -r Makefile scripts "$tmp/src/"
chmod -R a+rX "$tmp"
chmod a+rwx "$tmp/out"
cat >"$tmp/fake-sudo" <<'FAKE'
#!/bin/sh
# Records how it was called; does not run anything.
for a; do printf '[%s]' "$a"; done >"${FAKE_SUDO_LOG:?}"
FAKE
chmod a+rx "$tmp/fake-sudo"
# A clean environment: run from `make test` (MAKEFLAGS, CI=true ...), the makes below
# would inherit the caller's variables.
clean_env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/)
as_nobody() { (cd "$tmp/src" && setpriv --reuid=65534 --regid=65534 --clear-groups \
	"${clean_env[@]}" "$@"); }

for goal in test demo; do
	out=$(as_nobody make "$goal" SUDO=fp-no-such-sudo 2>&1)
	rc=$?
	if [ "$rc" -ne 0 ] && grep -q "make $goal: needs root" <<<"$out" &&
		grep -q "'fp-no-such-sudo' is not installed: run it as root" <<<"$out" &&
		[ ! -e "$tmp/src/build" ]; then
		tap ok "make $goal, not root, no sudo: a clear error, nothing done"
	else
		tap fail "make $goal, not root, no sudo: a clear error, nothing done" "status $rc" "$out"
	fi

	log=$tmp/out/sudo-$goal.log
	out=$(as_nobody TIERS="unit bpf" FAKE_SUDO_LOG="$log" make "$goal" \
		TEST_FILTER=lb_modes SUDO="$tmp/fake-sudo" 2>&1)
	rc=$?
	want="[make][--no-print-directory][$goal][TIERS=unit bpf][TEST_FILTER=lb_modes]"
	got=$(cat "$log" 2>/dev/null)
	if [ "$rc" -eq 0 ] && [ "$got" = "$want" ] && [ ! -e "$tmp/src/build" ]; then
		tap ok "make $goal, not root, with sudo: re-runs itself under sudo with the variables"
	else
		tap fail "make $goal, not root, with sudo: re-runs itself under sudo with the variables" \
			"status $rc, sudo called as '$got', wanted '$want'" "$out"
	fi
done

log=$tmp/out/sudo-root.log
out=$(cd "$tmp/src" && "${clean_env[@]}" FAKE_SUDO_LOG="$log" make -n test \
	SUDO="$tmp/fake-sudo" 2>&1)
if [ ! -e "$log" ] && grep -q "bash scripts/deps.sh" <<<"$out" &&
	grep -q "bash scripts/run-tests.sh" <<<"$out"; then
	tap ok "make test as root runs deps and the tests directly, not through sudo"
else
	tap fail "make test as root runs deps and the tests directly, not through sudo" \
		"sudo called: $(cat "$log" 2>/dev/null)" "$out"
fi
out=$(cd "$tmp/src" && "${clean_env[@]}" FAKE_SUDO_LOG="$log" SUDO="$tmp/fake-sudo" \
	bash scripts/deps.sh 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ ! -e "$log" ]; then
	tap ok "scripts/deps.sh as root needs no sudo"
else
	tap fail "scripts/deps.sh as root needs no sudo" "status $rc" "$out"
fi
echo "1..$n"
[ "$failed" -eq 0 ]
