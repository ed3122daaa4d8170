# shellcheck shell=bash
# Sourced by the scripts that run lab/run (lab/demo, tests/lab/client.sh,
# tests/lab/scenarios.sh): gives the caller a lab id of its own, and when the caller
# exits removes that lab and no other. lab/run tears its lab down itself; this catches
# a runner killed hard. Another lab on the machine, someone's --keep lab included, is
# never touched, and a lab this caller ran with --keep stays up (--cleanup-abandoned
# removes a lab only when its runner is gone and did not keep it).
#   lab_run ARGS...   lab/run --id "$LAB_ID" ARGS...
LAB_ID=fl$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
trap '/usr/bin/python3 lab/run --cleanup-abandoned "$LAB_ID" >/dev/null 2>&1' EXIT
lab_run() {
	/usr/bin/python3 lab/run --id "$LAB_ID" "$@"
}
