# SPDX-License-Identifier: MIT
"""The lab's etcd: a three-member cluster (Debian's etcd-server) on a management network.

    etcd1 etcd2 etcd3 ops ──(mgmt bridge, 10.95.0.0/24)── lbN, bN (mgmt0)

The members, the operator's namespace (`ops`, where `flowpin fleet push|status` run)
and every node that is configured from etcd have a second interface, `mgmt0`, on a
bridge of their own: etcd's traffic never crosses the fabric the VIPs' packets use
(the LB nodes' XDP program sees none of it), as on a real fleet's management network.

Addresses: member etcdN 10.95.0.1N (client port 2379, peer port 2380), ops 10.95.0.2,
lbN 10.95.0.2N, bN 10.95.0.4N. Every member runs in the foreground under the lab
(`Lab.start`), its data in the run dir; `Lab.down()` and `lab/run --cleanup` end it with
its namespace. A member is stopped with SIGKILL (a crash: nothing said to the others)
and started again on its data directory.

docs/etcd.md is the node's side; docs/lab.md "Fleet configuration from etcd" the
scenarios.
"""
import json
import os
import signal
import subprocess
import time

from lablib import LabError, log

ETCD = "/usr/bin/etcd"
MEMBERS = ["etcd1", "etcd2", "etcd3"]
MGMT = "mgmt"  # the bridge's namespace
OPS = "ops"  # the operator's namespace
CLIENT_PORT = 2379
PEER_PORT = 2380
PREFIX = "/flowpin/lab"


def mgmt_v4(name):
    """A node's address on the management network."""
    if name == OPS:
        return "10.95.0.2"
    if name in MEMBERS:
        return "10.95.0.1%d" % int(name[-1])
    n = int(name[-1])
    if name.startswith("lb"):
        return "10.95.0.2%d" % n
    if name.startswith("b"):
        return "10.95.0.4%d" % n
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
        self.dir = os.path.join(lab.dir, "etcd")

    # ------------------------------------------------------------ the network
    def attach(self, node):
        """Gives `node` (a namespace of the lab) its mgmt0 on the management bridge."""
        if node in self.attached:
            return
        lab = self.lab
        if node not in lab.namespaces:
            lab.sh("ip", "netns", "add", lab.ns(node))
            lab.namespaces.append(node)
            lab.ip(node, "link", "set", "lo", "up")
        lab.ip(MGMT, "link", "add", "m-" + node, "type", "veth", "peer", "name", "mgmt0",
               "netns", lab.ns(node))
        lab.ip(MGMT, "link", "set", "m-" + node, "master", "br0", "up")
        lab.ip(node, "addr", "add", mgmt_v4(node) + "/24", "dev", "mgmt0")
        lab.ip(node, "link", "set", "mgmt0", "up")
        self.attached.add(node)

    def url(self, members=MEMBERS):
        """The --config URL of a node that knows these members (default: all three)."""
        return "etcd://%s%s" % (",".join("%s:%d" % (mgmt_v4(m), CLIENT_PORT)
                                         for m in members), PREFIX)

    # ------------------------------------------------------------ the members
    def start(self):
        lab = self.lab
        why = available()
        if why:
            raise LabError("etcd: " + why)
        lab.sh("ip", "netns", "add", lab.ns(MGMT))
        lab.namespaces.append(MGMT)
        lab.ip(MGMT, "link", "add", "br0", "type", "bridge")
        lab.ip(MGMT, "link", "set", "br0", "up")
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
    def fleet(self, *args):
        """`flowpin fleet ARGS --config URL` in the operator's namespace: (rc, output)."""
        r = subprocess.run(["ip", "netns", "exec", self.lab.ns(OPS), self.lab.flowpin,
                            "fleet"] + list(args) + ["--config", self.url()],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        return r.returncode, r.stdout.strip()

    def push(self, path, canary_nodes=None):
        """fleet push: (revision or None, what flowpin said)."""
        args = ["push", path]
        if canary_nodes:
            args += ["--canary-nodes", ",".join(canary_nodes)]
        rc, out = self.fleet(*args)
        rev = None
        if rc == 0 and " revision " in out:
            try:
                rev = int(out.split(" revision ")[1].split()[0])
            except (IndexError, ValueError):
                pass
        return rev, out

    def status(self):
        """fleet status --json as a dict, {} when etcd cannot answer."""
        rc, out = self.fleet("status", "--json")
        if rc != 0:
            return {}
        try:
            return json.loads(out.splitlines()[-1])
        except (ValueError, IndexError):
            return {}

    def wait_applied(self, nodes, revision, timeout):
        """Polls fleet status until every node in `nodes` applied `revision` (or a later
        one) or timeout s passed: {node: applied_at (Unix time) or None}."""
        deadline = time.monotonic() + timeout
        got = {}
        while True:
            st = self.status()
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
        return any(m in self.cluster.up_members for m in self.members_of(node))

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
            desc += "; %s, knowing only %s (down): %s" % (
                ", ".join(cut), ", ".join(sorted({m for n in cut for m in
                                                  self.members_of(n)})),
                "behind, as without failover" if len(behind) == len(cut) else
                "applied it?")
            self.check(len(behind) == len(cut), "etcd push revision %d: %s (no member up "
                       "in their endpoints) stayed behind" % (rev, ", ".join(cut)))
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
        said = ""
        down = [n for n in sorted(state) if self.running(n) and not self.reachable(n)]
        if down:
            unreachable = [n for n in down if "UNREACHABLE" in self.lb_status(n)]
            said = "; before: lb status UNREACHABLE on %s of %s" % (
                ", ".join(unreachable) or "none", ", ".join(down))
            said += self.check(len(unreachable) == len(down), "etcd down: lb status says "
                               "UNREACHABLE on %s" % ", ".join(down))
        for m in names:
            self.cluster.start_member(m, wait=False)
        self.cluster.wait_healthy(names, timeout=30)
        return "etcd-member: %s started again, healthy after %.1f s%s" % (
            ", ".join(names), time.monotonic() - t, said)

    def restore(self):
        """Members the scenario stopped start again before the next one."""
        down = [m for m in MEMBERS if m not in self.cluster.up_members]
        for m in down:
            self.cluster.start_member(m, wait=False)
        if down:
            self.cluster.wait_healthy(down, timeout=30)
