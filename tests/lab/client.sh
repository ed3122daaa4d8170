#!/usr/bin/env bash
# Lab tier: the lab's plumbing and its traffic client, without flowpin. The VIPs are
# routed straight to one backend; the client must report a clean download as completed
# and each real failure (wrong content, RST from a backend without the flow, a
# blackholed route) as its own kind of broken flow. Everything runs inside namespaces
# that lab/run creates and removes (also on failure or Ctrl-C).
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
	echo "ok 1 # SKIP the lab needs root (network namespaces)"
	exit 0
fi
# lab/run tears its lab down itself; lab-id.bash removes it (and no other lab) if the
# runner was killed hard.
# shellcheck source=lab/lab-id.bash
source lab/lab-id.bash
lab_run --direct --tap
