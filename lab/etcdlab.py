# SPDX-License-Identifier: MIT
"""The lab's etcd: a three-member cluster (Debian's etcd-server) on a management network.

    site a: etcd1 etcd2 etcd3 ops lbN bN ──(br0 in ns mgmt, 10.95.0.0/24, gateway .1)
                                                   │ mdci: the sites' management path
                                                   │ (10.93.0.0/30: mgmt .1, mgmt-b .2)
    site b: lb4 lb5 b6 b7 ────────────────(br0 in ns mgmt-b, 10.94.0.0/24, gateway .1)

The members, the operator's namespace (`ops`, where `flowpin fleet push|status` run)
and every node that is configured from etcd have a second interface, `mgmt0`, on their
site's management bridge: etcd's traffic never crosses the fabric the VIPs' packets use
(the LB nodes' XDP program sees none of it), as on a real fleet's management network.

The members are site a's (one Raft quorum in one site: its heartbeats and elections
never cross the sites' path). Site b's nodes reach them over the management path
between the sites (`mdci`, routed by the two bridges' namespaces); cutting it
(`etcd-path: {site: b, action: cut}`) is, for site b, the etcd-unreachable case: its
nodes keep forwarding with what they applied last, say UNREACHABLE, and catch up when
the path is back. Site a is not touched.

Addresses: member etcdN 10.95.0.1N (client port 2379, peer port 2380), ops 10.95.0.2,
lbN 10.95.0.2N and bN 10.95.0.4N on their site's network (site a 10.95.0, site b
10.94.0). Every member runs in the foreground under the lab (`Lab.start`), its data in
the run dir; `Lab.down()` and `lab/run --cleanup` end it with its namespace. A member
is stopped with SIGKILL (a crash: nothing said to the others) and started again on its
data directory.

Two prefixes: PREFIX (/flowpin/lab) holds the LB nodes' fleet config, which the
scenarios push; AGENTS (/flowpin/agents) the backend agents' config, every backend
active (as the file-based lab's agents have it: a backend removed from the LB nodes'
config still decapsulates, so second chance can reach it), written once when the
agents start.

docs/etcd.md is the node's side; docs/lab.md "Fleet configuration from etcd" the
scenarios.
"""
import json
import os
import signal
import subprocess
import time

import lablib
from lablib import LabError, log

ETCD = "/usr/bin/etcd"
MEMBERS = ["etcd1", "etcd2", "etcd3"]
MGMT = {"a": "mgmt", "b": "mgmt-b"}  # each site's management bridge's namespace
MGMT_NET = {"a": "10.95.0", "b": "10.94.0"}  # each site's management network (/24)
PATH_NET = "10.93.0"  # the management path between the sites (/30: mgmt .1, mgmt-b .2)
OPS = "ops"  # the operator's namespace
CLIENT_PORT = 2379
PEER_PORT = 2380
PREFIX = "/flowpin/lab"  # the LB nodes' fleet config
AGENTS = "/flowpin/agents"  # the backend agents' config: every backend active
RETRY_CAP = 10  # s: a node's etcd retry backoff at most (docs/etcd.md)


def site_of(name):
    """The site of a namespace on the management network (members and ops: a)."""
    return "a" if name in MEMBERS or name == OPS else lablib.site_of(name)


def mgmt_v4(name):
    """A node's address on its site's management network."""
    net = MGMT_NET[site_of(name)]
    if name == OPS:
        return net + ".2"
    if name in MEMBERS:
        return "%s.1%d" % (net, int(name[-1]))
    n = int(name[-1])
    if name.startswith("lb"):
        return "%s.2%d" % (net, n)
    if name.startswith("b"):
        return "%s.4%d" % (net, n)
    raise LabError("no management address for %r" % name)


def available():
    """None when the lab can run etcd, else why not."""
    if not os.access(ETCD, os.X_OK):
        return "%s missing (Debian: etcd-server; scripts/deps.sh installs it)" % ETCD
    return None


class EtcdCluster:
    def __init__(self, lab):
        self.lab = lab
        self.attached = set()
        self.up_members = set()
        self.sites = list(lab.sites)  # a management network per site of the lab
        self.path_up = {x: True for x in self.sites}  # site b's path to the members
        self.dir = os.path.join(lab.dir, "etcd")

    # ------------------------------------------------------------ the network
    def attach(self, node):
        """Gives `node` (a namespace of the lab) its mgmt0 on the management bridge."""
        if node in self.attached:
            return
        lab = self.lab
        site = site_of(node)
        if node not in lab.namespaces:
            lab.sh("ip", "netns", "add", lab.ns(node))
            lab.namespaces.append(node)
            lab.ip(node, "link", "set", "lo", "up")
        mgmt = MGMT[site]
        lab.ip(mgmt, "link", "add", "m-" + node, "type", "veth", "peer", "name", "mgmt0",
               "netns", lab.ns(node))
        lab.ip(mgmt, "link", "set", "m-" + node, "master", "br0", "up")
        lab.ip(node, "addr", "add", mgmt_v4(node) + "/24", "dev", "mgmt0")
        lab.ip(node, "link", "set", "mgmt0", "up")
        # The other site's management network through this site's gateway (only
        # these /24s: every other route of the node stays as the lab made it).
        for far in self.sites:
            if far != site:
                lab.ip(node, "route", "add", MGMT_NET[far] + ".0/24", "via",
                       MGMT_NET[site] + ".1", "dev", "mgmt0")
        self.attached.add(node)

    def url(self, members=MEMBERS, prefix=PREFIX):
        """The --config URL of a node that knows these members (default: all three)."""
        return "etcd://%s%s" % (",".join("%s:%d" % (mgmt_v4(m), CLIENT_PORT)
                                         for m in members), prefix)

    def networks_up(self):
        """Each site's management bridge; with two sites, the path between them."""
        lab = self.lab
        for x in self.sites:
            ns = MGMT[x]
            lab.sh("ip", "netns", "add", lab.ns(ns))
            lab.namespaces.append(ns)
            lab.ip(ns, "link", "set", "lo", "up")
            lab.ip(ns, "link", "add", "br0", "type", "bridge")
            lab.ip(ns, "link", "set", "br0", "up")
            if len(self.sites) > 1:
                lab.ip(ns, "addr", "add", MGMT_NET[x] + ".1/24", "dev", "br0")
                lab.sysctl(ns, "net.ipv4.ip_forward=1")
        if len(self.sites) > 1:
            lab.ip(MGMT["a"], "link", "add", "mdci", "type", "veth", "peer", "name", "mdci",
                   "netns", lab.ns(MGMT["b"]))
            for x, me in (("a", 1), ("b", 2)):
                lab.ip(MGMT[x], "addr", "add", "%s.%d/30" % (PATH_NET, me), "dev", "mdci")
            self.set_path("b", True)

    def set_path(self, site, up):
        """Site b's management path to the members up or cut. Cut: its end goes down,
        so site b's gateway has no route to site a's network any more and answers its
        nodes' packets with ICMP unreachable (a connect fails at once); what site a sends
        toward site b is dropped (a watch stream in flight just stops)."""
        if site == "a" or site not in self.sites:
            raise LabError("etcd-path: site %s has no path to cut: the members are site "
                           "a's, and the lab's sites are %s" % (site, ", ".join(self.sites)))
        lab = self.lab
        for x, me, far in (("a", 1, "b"), ("b", 2, "a")):
            if x == site or up:
                lab.ip(MGMT[x], "link", "set", "mdci", "up" if up else "down")
            if up:
                lab.ip(MGMT[x], "route", "replace", MGMT_NET[far] + ".0/24", "via",
                       "%s.%d" % (PATH_NET, 3 - me), "dev", "mdci")
        self.path_up[site] = up

    # ------------------------------------------------------------ the members
    def start(self):
        why = available()
        if why:
            raise LabError("etcd: " + why)
        self.networks_up()
        for n in MEMBERS + [OPS]:
            self.attach(n)
        os.makedirs(self.dir, exist_ok=True)
        t = time.monotonic()
        for m in MEMBERS:
            self.start_member(m, wait=False)
        self.wait_healthy(MEMBERS, timeout=30)
        log("etcd: %s healthy after %.1f s (%s)" % (", ".join(MEMBERS), time.monotonic() - t,
                                                   self.url()))

    def start_member(self, m, wait=True):
        """Starts member m; on its data directory when it ran before (then the initial
        cluster flags are ignored by etcd)."""
        a = mgmt_v4(m)
        cluster = ",".join("%s=http://%s:%d" % (x, mgmt_v4(x), PEER_PORT) for x in MEMBERS)
        argv = [ETCD, "--name", m, "--data-dir", os.path.join(self.dir, m),
                "--listen-client-urls", "http://%s:%d" % (a, CLIENT_PORT),
                "--advertise-client-urls", "http://%s:%d" % (a, CLIENT_PORT),
                "--listen-peer-urls", "http://%s:%d" % (a, PEER_PORT),
                "--initial-advertise-peer-urls", "http://%s:%d" % (a, PEER_PORT),
                "--initial-cluster", cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", "flowpin-lab-" + self.lab.id,
                # the lab's scale: a 64 MiB quota, no metrics listener, warnings only
                "--quota-backend-bytes", str(64 << 20), "--log-level", "warn"]
        self.lab.start("etcd-" + m, m, argv)
        self.up_members.add(m)
        if wait:
            self.wait_healthy([m], timeout=30)

    def stop_member(self, m):
        """Member m crashes (SIGKILL)."""
        self.lab.stop("etcd-" + m, sig=signal.SIGKILL)
        self.up_members.discard(m)

    def healthy(self, m):
        r = subprocess.run(["ip", "netns", "exec", self.lab.ns(OPS), "curl", "-sf", "-m", "1",
                            "http://%s:%d/health" % (mgmt_v4(m), CLIENT_PORT)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            return r.returncode == 0 and json.loads(r.stdout).get("health") == "true"
        except ValueError:
            return False

    def wait_healthy(self, members, timeout):
        def ok():
            for m in members:
                if not self.lab.running("etcd-" + m):
                    raise LabError("etcd member %s exited:\n%s" % (m, self.lab.log_tail(
                        "etcd-" + m)))
            return all(self.healthy(m) for m in members)
        self.lab.wait_for(ok, "etcd members %s healthy" % ", ".join(members),
                          lambda: self.lab.log_tail("etcd-" + members[0]), timeout=timeout)

    # ------------------------------------------------------------ the operator
    def fleet(self, *args, prefix=PREFIX):
        """`flowpin fleet ARGS --config URL` in the operator's namespace: (rc, output)."""
        r = subprocess.run(["ip", "netns", "exec", self.lab.ns(OPS), self.lab.flowpin,
                            "fleet"] + list(args) + ["--config", self.url(prefix=prefix)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        return r.returncode, r.stdout.strip()

    def push(self, path, canary_nodes=None, prefix=PREFIX):
        """fleet push: (revision or None, what flowpin said)."""
        args = ["push", path]
        if canary_nodes:
            args += ["--canary-nodes", ",".join(canary_nodes)]
        rc, out = self.fleet(*args, prefix=prefix)
        rev = None
        if rc == 0 and " revision " in out:
            try:
                rev = int(out.split(" revision ")[1].split()[0])
            except (IndexError, ValueError):
                pass
        return rev, out

    def status(self, prefix=PREFIX):
        """fleet status --json as a dict, {} when etcd cannot answer."""
        rc, out = self.fleet("status", "--json", prefix=prefix)
        if rc != 0:
            return {}
        try:
            return json.loads(out.splitlines()[-1])
        except (ValueError, IndexError):
            return {}

    def wait_applied(self, nodes, revision, timeout, prefix=PREFIX):
        """Polls fleet status until every node in `nodes` applied `revision` (or a later
        one) or timeout s passed: {node: applied_at (Unix time) or None}."""
        deadline = time.monotonic() + timeout
        got = {}
        while True:
            st = self.status(prefix)
            for n in st.get("nodes", []):
                if n.get("node") in nodes and n.get("applied_revision", 0) >= revision:
                    got[n["node"]] = n.get("applied_at")
            if len(got) == len(nodes) or time.monotonic() > deadline:
                return {n: got.get(n) for n in nodes}
            time.sleep(0.25)  # the nodes time their applies themselves (applied_at)


class EtcdScenario:
    """One scenario run from etcd: the LB nodes' --config, the pushes that stand for
    `flowpin lb reload` on the file-based lab, their measurement and checks.

    The lab's model gives every LB node its own backend set (a rolling change touches
    one node at a time); etcd holds one config and one canary (docs/etcd.md), so the
    nodes' sets are pushed as `PREFIX/config` (every node) while they agree, and as a
    canary for the nodes that moved on while the others keep `PREFIX/config`."""

    def __init__(self, cluster, spec, write_config, cfg_path, running, lb_status):
        self.cluster = cluster
        self.apply_within = spec["apply_within"]
        self.endpoints = spec["endpoints"]  # node -> [member number] (default: all)
        self.write_config = write_config  # (path, backends, timeouts) -> path
        self.cfg_path = cfg_path  # () -> a new config file path
        self.running = running  # node -> bool: its flowpin lb runs
        self.lb_status = lb_status  # node -> `flowpin lb status` output
        self.base = None  # the backend set PREFIX/config holds
        self.pushes = []  # (what, {node: seconds from push start to apply}, spread)
        self.failures = []  # what did not hold, in words
        self.notes = []  # (ok, line) for TAP

    def members_of(self, node):
        return [MEMBERS[i - 1] for i in self.endpoints.get(node, [1, 2, 3])]

    def node_args(self, node):
        """`flowpin lb up` arguments of an LB node configured from etcd."""
        self.cluster.attach(node)
        return ["--config", self.cluster.url(self.members_of(node)), "--node", node]

    def reachable(self, node):
        """The node reaches a member: one of its endpoints is up, and its site's path
        to the members (site a's are local) is not cut."""
        return self.cluster.path_up.get(site_of(node), True) and \
            any(m in self.cluster.up_members for m in self.members_of(node))

    def why_cut(self, node):
        """Why a node reaches no member, in words."""
        if not self.cluster.path_up.get(site_of(node), True):
            return "site %s's path to etcd cut" % site_of(node)
        ms = self.members_of(node)
        return "knowing only %s, down: no failover" % ", ".join(ms) \
            if len(ms) < len(MEMBERS) else "every member down"

    def check(self, ok, what):
        self.notes.append((ok, what))
        if not ok:
            self.failures.append(what)
        return "" if ok else "  ** UNEXPECTED **"

    def push_state(self, state, timeouts, why, first=False):
        """Pushes the nodes' backend sets (state: node -> {id: state}); waits for the
        nodes to apply and measures it. Returns the timeline's line. A push etcd
        refuses (unreachable) changes nothing: returns None and the line via
        self.last_refusal, and the caller keeps the nodes' old sets."""
        groups = {}
        for node in sorted(state):
            groups.setdefault(tuple(sorted(state[node].items())), []).append(node)
        if len(groups) == 1:
            (key, nodes), = groups.items()
            canary = None
        else:
            others = [k for k in groups if self.base is None or k != self.base]
            if len(groups) > 2 or len(others) != 1:
                raise LabError("etcd: %d different backend sets on the LB nodes (%s): etcd "
                               "holds one config and one canary" % (len(groups), "; ".join(
                                   " ".join(n) for n in groups.values())))
            key = others[0]
            canary = groups[key]
        path = self.write_config(self.cfg_path(), dict(key), timeouts)
        t = time.time()
        rev, out = self.cluster.push(path, canary)
        took = time.time() - t
        if rev is None:
            self.last_refusal = "fleet push refused after %.1f s, nothing written: %s" % (
                took, out.splitlines()[-1] if out else "?")
            # Refused only while no member answers.
            self.last_refusal += self.check(not self.cluster.up_members,
                                            "etcd push refused with members up: " + out)
            return None
        if canary is None:
            self.base = key
        if first:
            return "fleet push: %s revision %d" % ("config", rev)
        # Who must apply it: the running nodes whose set changed (a canary: its nodes;
        # PREFIX/config: every node, the canary's too, which move to PREFIX/config) and
        # that reach a member; a node that reaches none must not.
        expect = [n for n in sorted(state) if self.running(n) and
                  (canary is None or n in canary)]
        live = [n for n in expect if self.reachable(n)]
        cut = [n for n in expect if not self.reachable(n)]
        got = self.cluster.wait_applied(live, rev, self.apply_within + 2)
        lat = {n: (a - t if a else None) for n, a in got.items()}
        applied = [a for a in got.values() if a]
        spread = max(applied) - min(applied) if len(applied) > 1 else 0.0
        slow = [n for n in live if lat[n] is None or lat[n] > self.apply_within]
        desc = "%s pushed through etcd (%s revision %d%s): " % (
            why, "canary" if canary else "config", rev,
            " for " + ",".join(canary) if canary else "")
        desc += ", ".join("%s %s" % (n, "%.2f s" % lat[n] if lat[n] is not None else "never")
                          for n in live)
        desc += "; spread %.3f s (bound %.1f s)" % (spread, self.apply_within)
        desc += self.check(not slow, "etcd push revision %d: %s applied within %.1f s" % (
            rev, ", ".join(live), self.apply_within))
        if cut:
            # Give them the same time: they must still be behind (no member they know).
            time.sleep(max(0.0, t + self.apply_within - time.time()))
            late = self.cluster.wait_applied(cut, rev, 0)
            behind = [n for n in cut if not late[n]]
            reasons = {}
            for n in cut:
                reasons.setdefault(self.why_cut(n), []).append(n)
            desc += "; %s: %s" % ("; ".join("%s (%s)" % (", ".join(ns), w)
                                            for w, ns in sorted(reasons.items())),
                                  "behind" if len(behind) == len(cut) else "applied it?")
            self.check(len(behind) == len(cut), "etcd push revision %d: %s (no member "
                       "reachable) stayed behind" % (rev, ", ".join(cut)))
        self.pushes.append((why, lat, spread))
        return desc

    def settle(self, nodes, timeout=40):
        """Waits until no backend's health is `unknown` on any of the nodes (seconds it
        took). While a node starts, every health transition is an apply of its own on
        the daemon's loop, and a change from etcd waits behind them: measured from a
        node at rest, a push times etcd and the apply, not the start's backlog."""
        t = time.monotonic()

        def unknown(node):
            try:
                st = json.loads(self.lb_status(node, "--json"))
            except ValueError:
                return True
            return any(b.get("health") == "unknown" for v in st.get("vips", [])
                       for b in v.get("backends", []))
        deadline = t + timeout
        while any(unknown(n) for n in nodes):
            if time.monotonic() > deadline:
                raise LabError("etcd: health checks on %s did not settle in %d s" %
                               (", ".join(nodes), timeout))
            time.sleep(0.5)
        return time.monotonic() - t

    def started_from_cache(self, node, log_tail):
        """A node (re)started while it reaches no member: from the config it applied
        last (RUN-DIR/DEV.etcd.yaml), said in its log."""
        ok = "starting from the config applied last" in log_tail
        return "; etcd down: started from the config it applied last%s" % self.check(
            ok, "etcd down: %s restarted from its cached config" % node)

    def unreachable_said(self, state):
        """Before etcd comes back for them: every running node that reaches no member
        must say so in `flowpin lb status`. The timeline's note ("" when none is cut)."""
        down = [n for n in sorted(state) if self.running(n) and not self.reachable(n)]
        if not down:
            return ""
        unreachable = [n for n in down if "UNREACHABLE" in self.lb_status(n)]
        said = "; before: lb status UNREACHABLE on %s of %s" % (
            ", ".join(unreachable) or "none", ", ".join(down))
        return said + self.check(len(unreachable) == len(down), "etcd down: lb status says "
                                 "UNREACHABLE on %s" % ", ".join(down))

    def path(self, site, action, state):
        """etcd-path: site's management path to the members cut or restored. Restored:
        the site's running nodes, which said UNREACHABLE, apply what PREFIX holds now
        (anything pushed while they were cut) within the retry backoff's cap (10 s)
        plus apply_within: measured from the restore to each node's apply."""
        nodes = [n for n in sorted(state) if site_of(n) == site and self.running(n)]
        if action == "cut":
            self.cluster.set_path(site, False)
            return "etcd-path: site %s's management path to the members cut (%s keep " \
                "forwarding with what they applied last)" % (site, ", ".join(nodes))
        said = self.unreachable_said(state)
        # What each must run: PREFIX/config's revision, or the canary's for its nodes.
        st = self.cluster.status()
        canary = st.get("canary_nodes", "").split()
        want = {n: st.get("canary_revision") if n in canary and st.get("canary_revision")
                else st.get("config_revision", 0) for n in nodes}
        before = {n["node"]: n.get("applied_revision", 0) for n in st.get("nodes", [])
                  if n.get("node") in nodes}  # their last status (10 s lease) if any
        t = time.time()
        self.cluster.set_path(site, True)
        bound = RETRY_CAP + self.apply_within
        live = [n for n in nodes if any(m in self.cluster.up_members
                                        for m in self.members_of(n))]
        got = {}
        for rev in sorted({want[n] for n in live}):
            got.update(self.cluster.wait_applied([n for n in live if want[n] == rev], rev,
                                                 bound + 2))
        lat = {n: (a - t if a else None) for n, a in got.items()}
        late = [n for n in live if lat.get(n) is None or lat[n] > bound]
        revs = ", ".join(str(r) for r in sorted({want[n] for n in live}))
        desc = "etcd-path: site %s's path restored%s; %s caught up with revision %s: %s " \
            "(bound %.0f s: the retry backoff's cap + apply_within)" % (
                site, said, ", ".join(live), revs, ", ".join(
                    "%s %s" % (n, "%.2f s" % lat[n] if lat.get(n) is not None else "never")
                    for n in live), bound)
        if before:
            desc += "; before the restore their last status said %s" % ", ".join(
                "%s %d" % kv for kv in sorted(before.items()))
        desc += self.check(not late, "etcd path back: %s applied revision %s within %.0f s" %
                           (", ".join(live), revs, bound))
        if live:
            applied = [a for a in got.values() if a]
            spread = max(applied) - min(applied) if len(applied) > 1 else 0.0
            self.pushes.append(("site %s's path back (catch-up)" % site, lat, spread))
        return desc

    def members(self, action, numbers, state):
        names = [MEMBERS[i - 1] for i in numbers]
        t = time.monotonic()
        if action == "stop":
            for m in names:
                self.cluster.stop_member(m)
            left = sorted(self.cluster.up_members)
            return "etcd-member: %s killed (SIGKILL); up: %s" % (
                ", ".join(names), ", ".join(left) or "none")
        # Before they come back: every running node that reaches no member must say so.
        said = self.unreachable_said(state)
        for m in names:
            self.cluster.start_member(m, wait=False)
        self.cluster.wait_healthy(names, timeout=30)
        return "etcd-member: %s started again, healthy after %.1f s%s" % (
            ", ".join(names), time.monotonic() - t, said)

    def restore(self):
        """Members the scenario stopped start again, and paths it cut come back,
        before the next one."""
        for x, up in sorted(self.cluster.path_up.items()):
            if not up:
                self.cluster.set_path(x, True)
        down = [m for m in MEMBERS if m not in self.cluster.up_members]
        for m in down:
            self.cluster.start_member(m, wait=False)
        if down:
            self.cluster.wait_healthy(down, timeout=30)
