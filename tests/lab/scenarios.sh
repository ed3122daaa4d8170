#!/usr/bin/env bash
# Lab tier: the short scenario set with real TCP flows through flowpin (XDP LB nodes,
# tc backends, nginx): shift, shift-during-change, backend-drain, lb-restart (kill -9 and
# take-over under traffic), lb-restart-cold (down + up), lb-upgrade (kill -9, then a
# rebuilt program swapped in under traffic), bgp-drain (the carrying
# node's routes get the GRACEFUL_SHUTDOWN community: BIRD on every node, the router
# moves the flows; routes come from BGP in all of them) and bgp-maintenance (the same
# drain by `flowpin lb maintenance on`, flowpin driving BIRD) and two-changes-idle (TCP
# tickets: two drains while idle, the carrying node restarted cold) with 40 flows per VIP, one
# TAP line per scenario x mode expectation (docs/lab.md). The runner builds its
# namespaces and removes them, also on failure or Ctrl-C.
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
	echo "ok 1 # SKIP the lab needs root (network namespaces, XDP)"
	exit 0
fi
# shellcheck source=lab/lab-id.bash
source lab/lab-id.bash # removes this lab, and no other, if the runner was killed hard
lab_run --tap --flows 40 shift shift-during-change backend-drain lb-restart lb-restart-cold \
	bgp-drain bgp-maintenance lb-upgrade two-changes-idle
