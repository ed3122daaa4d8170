# SPDX-License-Identifier: MIT
"""A kept lab (lab/run --keep, --idle) and the way back into it (lab/ctl).

When lab/run leaves a lab up, it writes what it knows of it to RUN_DIR/ctl.json: the
sites, the last scenario (file) and its pins, every LB node's backends as the runner
last applied them, the route, the BGP model (what each node announces, prepends,
MEDs), and the processes still running (pid, log). lab/ctl reads it back into a Lab
and a Runner of its own, applies one scenario event with the runner's own code (the
same as in a scenario's timeline), prints what it did, and writes the file again.
One lab/ctl at a time per lab (a lock file beside it).
"""
import fcntl
import json
import os

import lablib
from lablib import Lab, LabError, PidProc

STATE = "ctl.json"
BINS = ("flowpin", "fpclient", "fpquic", "empty_xdp", "flowpin_rebuilt")


def save(runner, s, state, route, removed):
    """Writes the kept lab's state (called with the LB nodes as `s` left them)."""
    lab = runner.lab
    d = {
        "version": 1,
        "id": lab.id,
        "sites": lab.sites,
        "scenario": os.path.abspath(s.path),
        "scenario_name": s.name,
        "scenario_index": runner.scenario_index,
        "generation": runner.generation,
        "cfg_sites": runner.cfg_sites,
        "lb_nodes": runner.lb_nodes,
        "pops": runner.pops,
        "cross_site": runner.cross_site,
        "bgp_scenario": runner.bgp_scenario,
        "bgp_cfg": runner.bgp_cfg,
        "health": runner.health,
        "state": {n: {str(i): st for i, st in b.items()} for n, b in state.items()},
        "route": list(route),
        "removed": sorted(removed),
        "failed": runner.failed,
        "procs": {k: [p.pid, path] for k, (p, _, path) in lab.procs.items()
                  if p.poll() is None},
        "static_routes": lab.static_routes,
        "nh_group_type": lab.nh_group_type,
        "route_nodes": lab.route_nodes,
        "client_links": lab.client_links,
        "bins": {b: getattr(lab, b) for b in BINS},
        "bgp": None,
    }
    if lab.bgp:
        d["bgp"] = {"nodes": {n: vars(st) for n, st in lab.bgp.nodes.items()},
                    "flowpin_nodes": sorted(lab.bgp.flowpin_nodes),
                    "pop_withdrawn": lab.bgp.pop_withdrawn}
    path = os.path.join(lab.dir, STATE)
    with open(path + ".tmp", "w") as f:
        json.dump(d, f, indent=1, sort_keys=True)
    os.rename(path + ".tmp", path)


def lock(ident):
    """Holds the kept lab's lock until the process exits (one lab/ctl at a time)."""
    d = lablib.run_dir(ident)
    if not os.path.exists(os.path.join(d, STATE)):
        raise LabError("no kept lab %s (%s has no %s: start one with lab/run --idle, or "
                       "lab/run --keep SCENARIO)" % (ident, d, STATE))
    global _held
    _held = open(os.path.join(d, "ctl.lock"), "w")
    fcntl.flock(_held, fcntl.LOCK_EX)


_held = None


def attach(ident, verbose=False):
    """The kept lab `ident` as a Lab (keep=True: nothing of it is torn down here) and
    its saved state."""
    with open(os.path.join(lablib.run_dir(ident), STATE)) as f:
        d = json.load(f)
    lab = Lab(keep=True, verbose=verbose, ident=ident, sites=len(d["sites"]))
    for b, path in d["bins"].items():
        setattr(lab, b, path)
    for k, (pid, path) in d["procs"].items():
        lab.procs[k] = (PidProc(pid), None, path)
    lab.static_routes = d["static_routes"]
    lab.nh_group_type = d["nh_group_type"]
    lab.route_nodes = d["route_nodes"]
    lab.client_links = d["client_links"]
    if d["bgp"]:
        import bgp
        lab.bgp = bgp.Bgp(lab)
        for n, fields in d["bgp"]["nodes"].items():
            lab.bgp.nodes[n].__dict__.update(fields)
        lab.bgp.flowpin_nodes = set(d["bgp"]["flowpin_nodes"])
        lab.bgp.pop_withdrawn = d["bgp"]["pop_withdrawn"]
    return lab, d


def restore_runner(runner, d):
    """The runner's fields as the kept lab's last runner left them; returns (state,
    route, removed) for Runner.apply()."""
    runner.scenario_index = d["scenario_index"]
    runner.generation = d["generation"]
    runner.cfg_sites = d["cfg_sites"]
    runner.lb_nodes = d["lb_nodes"]
    runner.pops = d["pops"]
    runner.cross_site = d["cross_site"]
    runner.bgp_scenario = d["bgp_scenario"]
    runner.bgp_cfg = d["bgp_cfg"]
    runner.health = d["health"]
    runner.failed = d["failed"]
    state = {n: {int(i): st for i, st in b.items()} for n, b in d["state"].items()}
    return state, list(d["route"]), set(d["removed"])
