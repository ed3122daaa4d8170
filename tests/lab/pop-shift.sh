#!/usr/bin/env bash
# Lab tier: the two-site lab (docs/lab.md "Two sites"), its own lab beside
# scenarios.sh's one-site run: pop-shift with 20 flows per VIP. The route moves from
# site a to site b mid-download by BGP (lb1 withdraws); the full+ticket flows must all
# survive by the cross-site hop (site b's LB sends their segments to a site a LB node,
# which forwards them by the ticket), every column without tickets and the client
# without timestamps must break, and the LB nodes' pop_out/pop_in must count the hops
# with no pop_drop_*. One TAP line per column and counter bound.
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
	echo "ok 1 # SKIP the lab needs root (network namespaces, XDP)"
	exit 0
fi
# shellcheck source=lab/lab-id.bash
source lab/lab-id.bash # removes this lab, and no other, if the runner was killed hard
lab_run --tap --flows 20 pop-shift
