#!/usr/bin/env bash
# Lab tier: a caller of lab/run cleans up its own lab and no other.
#
# Two labs of "someone else" are left as lab/run leaves them: one kept on purpose
# (--keep: runner gone, `kept` marker) and one whose runner was killed hard (runner
# gone, no marker), each with its run dir and a namespace. Then:
#   1. tests/lab/client.sh, a real caller, runs a whole lab and exits: its exit trap
#      must remove nothing of the other two, and its own lab must be gone;
#   2. a caller whose runner is killed with SIGKILL mid-setup: its exit trap
#      (lab/lab-id.bash) must remove its own lab, and still nothing of the others.
# Everything runs in a private mount namespace with its own /run (tmpfs): the labs and
# namespaces of this test live in it, and whatever a cleanup does, it cannot see, let
# alone remove, the labs of other runs on this machine. All of it goes with the test.
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
	echo "1..1"
	echo "ok 1 # SKIP needs root (mount and network namespaces, the lab)"
	exit 0
fi

inside=$(mktemp /tmp/flowpin-lab-cleanup.XXXXXX)
trap 'rm -f "$inside"' EXIT
cat >"$inside" <<'INSIDE'
set -uo pipefail
source tests/lab/backend_tap.bash
mount -t tmpfs -o mode=0755 flowpin-lab-cleanup /run || { echo "Bail out! cannot mount /run"; exit 1; }
tmp=$(mktemp -d /run/test.XXXXXX)

# A lab as lab/run leaves it when its runner is gone: run dir, owner, a namespace.
dead_pid() { bash -c 'echo $$'; }
fake_lab() { # id kept|killed
	mkdir -p "/run/flowpin-lab-$1/logs"
	dead_pid >"/run/flowpin-lab-$1/owner"
	[ "$2" = kept ] && dead_pid >"/run/flowpin-lab-$1/kept"
	ip netns add "$1-client"
}
survives() { # id: prints what is missing of lab id
	[ -d "/run/flowpin-lab-$1" ] || echo "run dir /run/flowpin-lab-$1 removed"
	ip netns list | grep -q "^$1-client\b" || echo "namespace $1-client removed"
}
gone() { # id: prints what is left of lab id
	[ -d "/run/flowpin-lab-$1" ] && echo "run dir /run/flowpin-lab-$1 left"
	ip netns list | grep "^$1-" | sed 's/^/namespace left: /'
}
check() { # description text-of-problems
	if [ -z "$2" ]; then tap ok "$1"; else tap fail "$1" "$2"; fi
}

fake_lab flkept1 kept
fake_lab flkilled1 killed

# 1. A real caller, start to end.
bash tests/lab/client.sh >"$tmp/client.out" 2>"$tmp/client.err"
rc=$?
own=$(sed -n 's/^lab: bringing up lab \([a-z0-9]*\) .*/\1/p' "$tmp/client.err")
if [ "$rc" -eq 0 ] && [ -n "$own" ]; then
	tap ok "client.sh ran its lab ($own)"
else
	tap fail "client.sh ran its lab" "status $rc" "$(tail -n 20 "$tmp/client.err")"
fi
check "a kept lab of someone else survives client.sh's cleanup" "$(survives flkept1)"
check "a killed lab of someone else survives client.sh's cleanup" "$(survives flkilled1)"
check "client.sh's own lab is gone" "$(if [ -n "$own" ]; then gone "$own"; else echo "no lab id"; fi)"

# 2. A caller whose runner is killed hard during the lab's setup.
(
	source lab/lab-id.bash
	echo "$LAB_ID" >"$tmp/id"
	lab_run --direct --tap >"$tmp/killed.out" 2>&1 &
	for _ in $(seq 200); do
		ip netns list | grep -q "^$LAB_ID-" && break
		sleep 0.05
	done
	kill -KILL "$(cat "/run/flowpin-lab-$LAB_ID/owner")"
	wait
) # the subshell's exit runs lab-id.bash's trap
id=$(cat "$tmp/id")
if grep -q "bringing up lab $id" "$tmp/killed.out" && ! grep -q "done in" "$tmp/killed.out"; then
	tap ok "a runner killed hard during setup ($id) left no teardown of its own"
else
	tap fail "a runner killed hard during setup" "$(cat "$tmp/killed.out")"
fi
check "the caller's exit trap removed its own killed lab" "$(gone "$id")"
check "a kept lab of someone else survives it" "$(survives flkept1)"
check "a killed lab of someone else survives it" "$(survives flkilled1)"

# 3. By hand: --cleanup without an id removes abandoned labs but lists kept ones;
# --cleanup ID removes a kept lab.
out=$(/usr/bin/python3 lab/run --cleanup 2>&1)
check "lab/run --cleanup removes a killed lab" "$(gone flkilled1)"
check "lab/run --cleanup keeps a kept lab and says how to remove it" \
	"$(survives flkept1; grep -q 'lab/run --cleanup flkept1' <<<"$out" || echo "$out")"
/usr/bin/python3 lab/run --cleanup flkept1 >/dev/null
check "lab/run --cleanup ID removes a kept lab" "$(gone flkept1)"
[ "$failed" -eq 0 ]
INSIDE
unshare --mount --propagation private bash "$inside"
