# SPDX-License-Identifier: MIT
"""Scenario files (lab/scenarios/*.yaml): load, validate, report every problem as
FILE:LINE: FIELD: message before anything starts. docs/lab.md describes the format."""
import yaml

from lablib import (LB_NODES, LB_NODES_B, BACKENDS, BACKENDS_B, MODES, QUIC_COLUMNS, TOR_EXPECT_KEYS,
                    VIPS, SITES, lb_counter_names, node_index, site_of)

EVENT_KINDS = {
    # kind: (allowed keys of its argument mapping, required keys)
    "route": ({"to"}, {"to"}),
    "ecmp": ({"nodes"}, {"nodes"}),
    "backend": ({"action", "id", "nodes"}, {"action", "id"}),
    "backend-fail": ({"id", "what"}, {"id", "what"}),
    "lb-fail": ({"node", "how"}, {"node"}),
    "lb-recover": ({"node"}, {"node"}),
    "lb-restart": ({"node", "how"}, {"node", "how"}),
    "lb-upgrade": ({"node"}, {"node"}),  # kill -9, then `lb up` of build/flowpin-rebuilt
    "reload": ({"nodes"}, set()),
    "pause": (set(), set()),
    "resume": (set(), set()),
    # BGP events (the default lab, lab/bgp.py): one LB node's announcements or session
    "bgp-announce": ({"node", "vip"}, {"node"}),
    "bgp-withdraw": ({"node", "vip"}, {"node"}),
    "bgp-drain": ({"node", "vip"}, {"node"}),
    "bgp-prepend": ({"node", "count"}, {"node", "count"}),
    "bgp-med": ({"node", "med"}, {"node", "med"}),
    "bgp-cut": ({"node", "how"}, {"node"}),
    "bgp-restore": ({"node"}, {"node"}),
    # `flowpin lb maintenance on|off` on a node whose flowpin drives BIRD (bgp.flowpin)
    "bgp-maintenance": ({"node", "action", "deadline"}, {"node", "action"}),
    # the node's tcp health checks fail for half of every `period` s, for `for` s
    # (`ip rule ... ipproto tcp dport 80 prohibit` in its namespace: the data plane's
    # packets to the backends are UDP and pass)
    "health-flap": ({"node", "period", "for"}, {"node", "for"}),
    # QUIC scenarios (traffic.quic): the client's connections move, by a NAT rebinding
    # (new source port: the even-numbered) or an active migration (new source address:
    # the odd-numbered)
    "quic-move": ({"how"}, {"how"}),
    # every LB node's backend set replaced in one reload (one new generation: a hop
    # list then names the owner before it), e.g. {active: [2], draining: [1]}
    "backends": ({"active", "draining"}, set()),
    # Tor scenarios (traffic.tor): the exit relay resolves a fresh name through the
    # resolver VIP every `every` s for `for` s (tor-resolve through the Tor client)
    "tor-dns": ({"for", "every"}, {"for"}),
    # two-site scenarios (sites: 2): the router's route to the VIPs moves to site `to`
    # by BGP: withdraw = the other site's announcing nodes withdraw every VIP (moving
    # back: they announce again), prepend = the other site's nodes prepend more than
    # the site's own
    "pop": ({"to", "how"}, {"to"}),
    # the lab's etcd cluster (lab/etcdlab.py): members 1..3 (or `all`) crash (SIGKILL)
    # or start again on their data
    "etcd-member": ({"action", "members"}, {"action", "members"}),
    # two sites from etcd: site b's management path to the members (site a's) cut or
    # restored (lab/etcdlab.py)
    "etcd-path": ({"site", "action"}, {"site", "action"}),
}
ETCD_PATH_ACTIONS = ("cut", "restore")
POP_HOWS = ("withdraw", "prepend")
ETCD_MEMBERS = (1, 2, 3)
ETCD_ACTIONS = ("stop", "start")
# etcd: {apply_within: S, endpoints: {NODE: [MEMBER...]}}: the LB nodes run from the
# lab's etcd (config pushed with `flowpin fleet push`); every push must be applied by
# every node that reaches a member within apply_within s; a node given fewer endpoints
# (the method's absence: no failover) must not, while those members are down.
ETCD_KEYS = {"apply_within", "endpoints"}
QUIC_MOVES = ("rebind", "migrate")
BGP_EVENTS = {k for k in EVENT_KINDS if k.startswith("bgp-")}
CUT_HOWS = ("block", "kill")  # bgp-cut: packets dropped (BFD notices) or BIRD killed
FAIL_HOWS = ("link", "crash")  # lb-fail: link down (BFD notices) or kill -9 with link up
MAX_PREPEND = 8
VIP_NAMES = [name for name, _, _ in VIPS]
BACKEND_ACTIONS = ("add", "drain", "remove")
FAIL_WHATS = ("nginx", "agent")  # backend-fail: the service dies, or the flowpin agent
# lb-restart: kill -9 or SIGTERM + up (take-over), or down + up (cold)
RESTART_HOWS = ("kill", "term", "down")
# survive: 0 broken; break: > 0 broken; few: at most 1% of the flows (at least 1) may
# break, for the bucket table's near-minimal disruption (a handful of other buckets move too);
# any: not asserted.
EXPECT_VALUES = ("survive", "break", "few", "any")
EXPECT_MARK = {"survive": "✔", "break": "✘", "few": "≈", "any": "·"}


def expectation_holds(want, broken, total):
    if total == 0:
        return False  # no flow measured proves nothing
    if want == "survive":
        return broken == 0
    if want == "break":
        return broken > 0
    if want == "few":
        return broken <= max(1, -(-total // 100))
    return True
TOP_KEYS = {"name", "description", "traffic", "route", "backends", "timeouts", "bgp", "events",
            "expect", "health", "route_changes", "counters", "sites",
            "etcd"}
# counters: bounds on `flowpin lb stats` counters summed over the LB nodes at the end of
# the scenario (what shows *why* flows survived): min, max, and min_per_flow (at least
# that many times the flows per VIP, as run: --flows counts).
COUNTER_BOUNDS = {"min", "max", "min_per_flow"}
# The cross-site counters (CONTRACTS.md, fixed names): a two-site scenario may bound them
# before the build has them; the runner then skips those bounds, with the reason, like
# the columns that need the cross-site hop.
CROSS_SITE_COUNTERS = {"pop_out", "pop_in", "pop_drop_source", "pop_drop_loop",
                       "pop_drop_invalid"}


def counter_holds(bound, value, flows):
    """Whether a counter's value meets its bounds (a dict of COUNTER_BOUNDS)."""
    lo = max(bound.get("min", 0), bound.get("min_per_flow", 0) * flows)
    return value >= lo and ("max" not in bound or value <= bound["max"])


def counter_want(bound, flows):
    """The bounds in words, e.g. ">= 40" or "<= 0"."""
    parts = []
    if "min" in bound or "min_per_flow" in bound:
        parts.append(">= %g" % max(bound.get("min", 0), bound.get("min_per_flow", 0) * flows))
    if "max" in bound:
        parts.append("<= %d" % bound["max"])
    return " and ".join(parts)
HEALTH_KEYS = {"interval_ms", "timeout_ms", "rise", "fall"}
TRAFFIC_KEYS = {"flows", "size", "rate", "idle", "timeout", "quic", "stall", "tor"}
TIMEOUT_KEYS = {"tcp_established", "tcp_transitory", "udp"}


class Mapping(dict):
    """A YAML mapping that remembers the line of itself and of each key."""
    line = 0
    key_lines = None


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node):
    m = Mapping()
    m.line = node.start_mark.line + 1
    m.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        m[key] = loader.construct_object(value_node, deep=True)
        m.key_lines[key] = key_node.start_mark.line + 1
    return m


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class ScenarioError(Exception):
    pass


class Scenario:
    pass


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def load(path):
    """Returns a Scenario or raises ScenarioError listing every problem found."""
    errors = []

    def err(line, field, msg):
        errors.append("%s:%d: %s: %s" % (path, line, field, msg))

    try:
        with open(path) as f:
            doc = yaml.load(f, Loader=_Loader)
    except OSError as e:
        raise ScenarioError("%s: %s" % (path, e.strerror))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ScenarioError("%s:%d: yaml: %s" % (path, mark.line + 1 if mark else 1,
                                                  getattr(e, "problem", None) or e))
    if not isinstance(doc, Mapping):
        raise ScenarioError("%s:1: scenario: must be a mapping (name, traffic, events, expect)"
                            % path)

    def line_of(m, key):
        return m.key_lines.get(key, m.line) if isinstance(m, Mapping) else doc.line

    def check_keys(m, allowed, where):
        for k in m:
            if k not in allowed:
                err(line_of(m, k), "%s%s" % (where + "." if where else "", k),
                    "unknown key (known: %s)" % ", ".join(sorted(allowed)))

    def need_num(m, key, where, lo=0, hi=None, integer=False, default=None):
        if key not in m:
            if default is None:
                err(m.line, where + key, "missing")
            return default
        v = m[key]
        if not _num(v) or (integer and not isinstance(v, int)) or v < lo or \
                (hi is not None and v > hi):
            err(line_of(m, key), where + key, "must be a %s in [%s, %s], got %r" %
                ("whole number" if integer else "number", lo, hi if hi is not None else "...", v))
            return default
        return v

    s = Scenario()
    s.path = path
    check_keys(doc, TOP_KEYS, "")
    s.name = doc.get("name")
    if not isinstance(s.name, str) or not s.name:
        err(line_of(doc, "name"), "name", "missing or not a string")
    s.description = str(doc.get("description", "")).strip()

    # sites: 1 (site a: lb1-3, b1-5) or 2 (plus site b: lb4, lb5, b6, b7)
    s.sites = doc.get("sites", 1)
    if s.sites not in (1, 2) or isinstance(s.sites, bool):
        err(line_of(doc, "sites"), "sites", "1 or 2, got %r" % (s.sites,))
        s.sites = 1
    known_nodes = LB_NODES + (LB_NODES_B if s.sites == 2 else [])
    known_ids = [node_index(b) for b in BACKENDS + (BACKENDS_B if s.sites == 2 else [])]

    # traffic
    t = doc.get("traffic")
    s.flows, s.size, s.rate, s.idle_at, s.idle_for, s.timeout = 0, 0, 0, 0, 0.0, 0
    s.stall = 3
    s.duration = 0.0
    s.quic = s.tor = False
    if not isinstance(t, Mapping):
        err(line_of(doc, "traffic"), "traffic", "missing or not a mapping (flows, size, rate)")
    else:
        check_keys(t, TRAFFIC_KEYS, "traffic")
        s.flows = need_num(t, "flows", "traffic.", 1, 5000, integer=True, default=0)
        s.size = need_num(t, "size", "traffic.", 1000, 1 << 30, integer=True, default=0)
        s.rate = need_num(t, "rate", "traffic.", 1000, 1 << 30, integer=True, default=0)
        idle = t.get("idle")
        if idle is not None:
            if not isinstance(idle, Mapping):
                err(line_of(t, "idle"), "traffic.idle", "must be a mapping {at: S, for: S}")
            else:
                check_keys(idle, {"at", "for"}, "traffic.idle")
                at = need_num(idle, "at", "traffic.idle.", 0.5, default=0)
                s.idle_for = need_num(idle, "for", "traffic.idle.", 0.5, default=0)
                s.idle_at = int(at * s.rate)
                if s.size and s.idle_at >= s.size:
                    err(line_of(idle, "at"), "traffic.idle.at",
                        "the transfer ends before it would go idle (%d bytes at %d B/s)" %
                        (s.size, s.rate))
        if "quic" in t and not isinstance(t["quic"], bool):
            err(line_of(t, "quic"), "traffic.quic", "must be true or false")
        s.quic = t.get("quic") is True
        if "tor" in t and not isinstance(t["tor"], bool):
            err(line_of(t, "tor"), "traffic.tor", "must be true or false")
        s.tor = t.get("tor") is True
        if s.tor and s.quic:
            err(line_of(t, "tor"), "traffic.tor", "a scenario is QUIC or Tor, not both")
        if s.tor and "idle" in t:
            err(line_of(t, "idle"), "traffic.idle", "not with Tor downloads (curl)")
        s.duration = (s.size / s.rate if s.rate else 0) + s.idle_for
        s.timeout = need_num(t, "timeout", "traffic.", 1, 3600,
                             default=round(s.duration * 2 + 20))
        # Seconds without progress that count as a stall (fpclient --stall).
        s.stall = need_num(t, "stall", "traffic.", 1, 60, default=3)

    # initial route
    r = doc.get("route")
    s.route_nodes, s.route_group = ["lb1"], "hash-threshold"
    if r is not None:
        if not isinstance(r, Mapping):
            err(line_of(doc, "route"), "route", "must be {to: NODE} or {ecmp: [NODES], group: G}")
        else:
            check_keys(r, {"to", "ecmp", "group"}, "route")
            if ("to" in r) == ("ecmp" in r):
                err(r.line, "route", "exactly one of 'to' and 'ecmp'")
            elif "to" in r:
                s.route_nodes = _nodes(known_nodes, [r["to"]], line_of(r, "to"), "route.to", err)
            else:
                s.route_nodes = _nodes(known_nodes, r["ecmp"], line_of(r, "ecmp"), "route.ecmp", err)
            if s.sites == 2 and len({site_of(n) for n in s.route_nodes}) > 1:
                err(r.line, "route", "the nodes of one site (the other site is the "
                    "standby: its nodes announce with a longer AS path)")
            g = r.get("group", "hash-threshold")
            if g not in ("hash-threshold", "resilient"):
                err(line_of(r, "group"), "route.group", "hash-threshold or resilient, got %r" % g)
            s.route_group = g

    # initial backends
    b = doc.get("backends")
    s.backends = {1: "active", 2: "active", 3: "active", 4: "active"}
    if b is not None:
        if not isinstance(b, Mapping):
            err(line_of(doc, "backends"), "backends", "must be {active: [ids], draining: [ids]}")
        else:
            check_keys(b, {"active", "draining"}, "backends")
            s.backends = {}
            for state in ("active", "draining"):
                for i in _ids(known_ids, b.get(state, []), line_of(b, state), "backends." + state, err):
                    s.backends[i] = state
    # site b's backends: all active unless the file names one of them
    if s.sites == 2 and not any(site_of("b%d" % i) == "b" for i in s.backends):
        s.backends.update({node_index(n): "active" for n in BACKENDS_B})

    # timeouts
    s.timeouts = {}
    tm = doc.get("timeouts")
    if tm is not None:
        if not isinstance(tm, Mapping):
            err(line_of(doc, "timeouts"), "timeouts", "must be a mapping")
        else:
            check_keys(tm, TIMEOUT_KEYS, "timeouts")
            for k in tm:
                if k in TIMEOUT_KEYS:
                    s.timeouts[k] = need_num(tm, k, "timeouts.", 1, 86400, integer=True)

    # initial BGP policy per LB node (the nodes of `route` announce, the others do not)
    # flowpin: the announcing nodes' flowpin lb drives their BIRD (a `bgp` section in
    # their config; the lab stops writing their include file)
    s.bgp_prepend, s.bgp_med, s.bgp_flowpin, s.bgp_damping = {}, {}, False, True
    g = doc.get("bgp")
    if g is not None:
        if not isinstance(g, Mapping):
            err(line_of(doc, "bgp"), "bgp",
                "must be {prepend: {NODE: N}, med: {NODE: N}, flowpin: BOOL}")
        else:
            check_keys(g, {"prepend", "med", "flowpin", "damping"}, "bgp")
            if "damping" in g:  # flowpin's flap damping (bgp.damping.enabled)
                if not isinstance(g["damping"], bool):
                    err(line_of(g, "damping"), "bgp.damping", "must be true or false")
                elif not g.get("flowpin"):
                    err(line_of(g, "damping"), "bgp.damping", "needs flowpin: true")
                else:
                    s.bgp_damping = g["damping"]
            if "flowpin" in g:
                if not isinstance(g["flowpin"], bool):
                    err(line_of(g, "flowpin"), "bgp.flowpin", "must be true or false")
                else:
                    s.bgp_flowpin = g["flowpin"]
            for key, hi, out in (("prepend", MAX_PREPEND, s.bgp_prepend),
                                 ("med", 0xffffffff, s.bgp_med)):
                m = g.get(key)
                if m is None:
                    continue
                if not isinstance(m, Mapping):
                    err(line_of(g, key), "bgp." + key, "must be a mapping {NODE: N}")
                    continue
                for node in m:
                    if node not in known_nodes:
                        err(line_of(m, node), "bgp.%s.%s" % (key, node),
                            "no LB node %r (known: %s)" % (node, ", ".join(known_nodes)))
                    else:
                        v = need_num(m, node, "bgp.%s." % key, 0, hi, integer=True)
                        if v is not None:
                            out[node] = v

    # health: this scenario's health checks (lablib.HEALTH's fields, the rest as there);
    # route_changes: {max: N} and/or {min: N}, the router's changes of its route to the
    # watched VIP (BGP lab)
    s.health = {}
    h = doc.get("health")
    if h is not None:
        if not isinstance(h, Mapping):
            err(line_of(doc, "health"), "health", "must be a mapping of %s" %
                ", ".join(sorted(HEALTH_KEYS)))
        else:
            check_keys(h, HEALTH_KEYS, "health")
            for k in sorted(set(h) & HEALTH_KEYS):
                v = need_num(h, k, "health.", 1, 60000 if k.endswith("_ms") else 100,
                             integer=True)
                if v is not None:
                    s.health[k] = v
    s.route_changes = {}
    rc = doc.get("route_changes")
    if rc is not None:
        if not isinstance(rc, Mapping):
            err(line_of(doc, "route_changes"), "route_changes", "must be {max: N, min: N}")
        else:
            check_keys(rc, {"max", "min"}, "route_changes")
            for k in sorted(set(rc) & {"max", "min"}):
                v = need_num(rc, k, "route_changes.", 0, 100000, integer=True)
                if v is not None:
                    s.route_changes[k] = v

    s.counters = {}
    c = doc.get("counters")
    if c is not None:
        if not isinstance(c, Mapping):
            err(line_of(doc, "counters"), "counters",
                "must be a mapping {COUNTER: {min: N, max: N, min_per_flow: N}}")
        else:
            known = lb_counter_names()
            if s.sites == 2:
                known |= CROSS_SITE_COUNTERS
            for name in c:
                field = "counters.%s" % name
                if name not in known:
                    err(line_of(c, name), field, "no LB counter %r (FP_COUNTERS in "
                        "include/flowpin/maps.h, as `flowpin lb stats` names them)" % (name,))
                    continue
                b = c[name]
                if not isinstance(b, Mapping) or not b:
                    err(line_of(c, name), field, "must be a mapping of %s" %
                        ", ".join(sorted(COUNTER_BOUNDS)))
                    continue
                check_keys(b, COUNTER_BOUNDS, field)
                bound = {}
                for k in sorted(set(b) & COUNTER_BOUNDS):
                    v = need_num(b, k, field + ".", 0, 1 << 62, integer=k != "min_per_flow")
                    if v is not None:
                        bound[k] = v
                s.counters[name] = bound

    # etcd: the scenario runs from the lab's etcd cluster (None: from files, unless
    # lab/run --etcd)
    s.etcd = None
    et = doc.get("etcd")
    if et is not None:
        if not isinstance(et, Mapping):
            err(line_of(doc, "etcd"), "etcd", "must be a mapping {apply_within: S, "
                "endpoints: {NODE: [MEMBER...]}} ({} for the defaults)")
        else:
            check_keys(et, ETCD_KEYS, "etcd")
            s.etcd = {"apply_within": need_num(et, "apply_within", "etcd.", 0.1, 60,
                                               default=5), "endpoints": {}}
            ep = et.get("endpoints", Mapping())
            if not isinstance(ep, Mapping):
                err(line_of(et, "endpoints"), "etcd.endpoints",
                    "must be a mapping {NODE: [MEMBER...]}")
                ep = Mapping()
            for node in ep:
                field = "etcd.endpoints.%s" % node
                ms = ep[node]
                if node not in known_nodes:
                    err(line_of(ep, node), field, "no LB node %r (known: %s)" %
                        (node, ", ".join(known_nodes)))
                elif not isinstance(ms, list) or not ms or \
                        any(m not in ETCD_MEMBERS for m in ms) or len(set(ms)) != len(ms):
                    err(line_of(ep, node), field, "must list etcd members, each once, of "
                        "%s, got %r" % (", ".join(map(str, ETCD_MEMBERS)), ms))
                else:
                    s.etcd["endpoints"][node] = list(ms)
            if s.bgp_flowpin:
                err(line_of(doc, "etcd"), "etcd", "not with bgp.flowpin: each node's `bgp` "
                    "section is its own, and etcd holds one config for every node")
            if s.health:
                err(line_of(doc, "etcd"), "etcd", "not with a scenario's own health checks "
                    "(health-flap: on some nodes only), and etcd holds one config for all")

    # events
    s.events = []
    ev = doc.get("events", [])
    if not isinstance(ev, list):
        err(line_of(doc, "events"), "events", "must be a list")
        ev = []
    for n, e in enumerate(ev):
        where = "events[%d]" % n
        if not isinstance(e, Mapping):
            err(line_of(doc, "events"), where, "must be a mapping {at: SECONDS, KIND: {...}}")
            continue
        at = e.get("at")
        if not _num(at) or at < 0:
            err(line_of(e, "at"), where + ".at", "must be a number of seconds >= 0, got %r" % at)
            at = None
        elif s.duration and at >= s.duration:
            err(line_of(e, "at"), where + ".at",
                "%.1f s is after the transfers end (%.1f s): the event would prove nothing" %
                (at, s.duration))
            at = None
        kinds = [k for k in e if k != "at"]
        if len(kinds) != 1 or kinds[0] not in EVENT_KINDS:
            bad = [k for k in kinds if k not in EVENT_KINDS]
            err(line_of(e, bad[0]) if bad else e.line, where,
                "unknown event %r (known: %s)" % (bad[0], ", ".join(EVENT_KINDS)) if bad
                else "exactly one event kind per entry (known: %s)" % ", ".join(EVENT_KINDS))
            continue
        kind = kinds[0]
        arg = e[kind] if e[kind] is not None else Mapping()
        allowed, required = EVENT_KINDS[kind]
        field = "%s.%s" % (where, kind)
        if not isinstance(arg, Mapping):
            err(line_of(e, kind), field, "must be a mapping of %s" %
                (", ".join(sorted(allowed)) or "nothing ({})"))
            continue
        if isinstance(arg, Mapping) and not arg.key_lines:
            arg.line = line_of(e, kind)
        check_keys(arg, allowed, field)
        for k in sorted(required - set(arg)):
            err(arg.line, field + "." + k, "missing")
        event = {"at": at, "kind": kind, "line": e.line}
        if kind == "route" and "to" in arg:
            event["nodes"] = _nodes(known_nodes, [arg["to"]], line_of(arg, "to"), field + ".to", err)
        elif kind == "ecmp" and "nodes" in arg:
            event["nodes"] = _nodes(known_nodes, arg["nodes"], line_of(arg, "nodes"), field + ".nodes", err)
            if len(event["nodes"]) < 2:
                err(line_of(arg, "nodes"), field + ".nodes", "an ECMP group needs >= 2 nodes")
        elif kind == "backend":
            a = arg.get("action")
            if a is not None and a not in BACKEND_ACTIONS:
                err(line_of(arg, "action"), field + ".action", "one of %s, got %r" %
                    (", ".join(BACKEND_ACTIONS), a))
            event["action"] = a
            ids = _ids(known_ids, [arg["id"]] if "id" in arg else [], line_of(arg, "id"), field + ".id", err)
            event["id"] = ids[0] if ids else None
            event["nodes"] = (_nodes(known_nodes, arg["nodes"], line_of(arg, "nodes"), field + ".nodes", err)
                              if "nodes" in arg and arg["nodes"] != "all" else list(known_nodes))
        elif kind == "backend-fail":
            ids = _ids(known_ids, [arg["id"]] if "id" in arg else [], line_of(arg, "id"), field + ".id", err)
            event["id"] = ids[0] if ids else None
            w = arg.get("what")
            if w is not None and w not in FAIL_WHATS:
                err(line_of(arg, "what"), field + ".what", "one of %s, got %r" %
                    (", ".join(FAIL_WHATS), w))
            event["what"] = w
        elif kind in ("lb-fail", "lb-recover", "lb-upgrade") and "node" in arg:
            event["nodes"] = _nodes(known_nodes, [arg["node"]], line_of(arg, "node"), field + ".node", err)
            h = arg.get("how", "link") if kind == "lb-fail" else None
            if kind == "lb-fail" and h not in FAIL_HOWS:
                err(line_of(arg, "how"), field + ".how", "one of %s, got %r" %
                    (", ".join(FAIL_HOWS), h))
            event["how"] = h
        elif kind in BGP_EVENTS:
            if "node" in arg:
                event["nodes"] = _nodes(known_nodes, [arg["node"]], line_of(arg, "node"), field + ".node",
                                        err)
            if "vip" in arg:
                event["vips"] = _vips(arg["vip"], line_of(arg, "vip"), field + ".vip", err)
            if kind == "bgp-prepend":
                event["count"] = need_num(arg, "count", field + ".", 0, MAX_PREPEND,
                                          integer=True, default=0)
            elif kind == "bgp-med":
                event["med"] = need_num(arg, "med", field + ".", 0, 0xffffffff, integer=True,
                                        default=0)
            elif kind == "bgp-maintenance":
                a = arg.get("action")
                a = {True: "on", False: "off"}.get(a, a) if isinstance(a, bool) else a
                if a not in ("on", "off"):
                    err(line_of(arg, "action"), field + ".action", "on or off, got %r" % (a,))
                event["action"] = a
                event["deadline"] = need_num(arg, "deadline", field + ".", 0, 3600,
                                             default=0)
            elif kind == "bgp-cut":
                h = arg.get("how", "block")
                if h not in CUT_HOWS:
                    err(line_of(arg, "how"), field + ".how", "one of %s, got %r" %
                        (", ".join(CUT_HOWS), h))
                event["how"] = h
        elif kind == "health-flap":
            if "node" in arg:
                event["nodes"] = _nodes(known_nodes, [arg["node"]], line_of(arg, "node"), field + ".node",
                                        err)
            event["period"] = need_num(arg, "period", field + ".", 0.2, 60, default=1)
            event["for"] = need_num(arg, "for", field + ".", 0, 600, default=0)
        elif kind == "lb-restart":
            if "node" in arg:
                event["nodes"] = _nodes(known_nodes, [arg["node"]], line_of(arg, "node"), field + ".node", err)
            h = arg.get("how")
            if h is not None and h not in RESTART_HOWS:
                err(line_of(arg, "how"), field + ".how", "one of %s, got %r" %
                    (", ".join(RESTART_HOWS), h))
            event["how"] = h
        elif kind == "quic-move":
            h = arg.get("how")
            if h is not None and h not in QUIC_MOVES:
                err(line_of(arg, "how"), field + ".how", "one of %s, got %r" %
                    (", ".join(QUIC_MOVES), h))
            if not s.quic:
                err(line_of(e, kind), field, "needs QUIC traffic (traffic.quic: true)")
            event["how"] = h
        elif kind == "backends":
            event["backends"] = {}
            for state in ("active", "draining"):
                for i in _ids(known_ids, arg.get(state, []), line_of(arg, state), field + "." + state,
                              err):
                    if i in event["backends"]:
                        err(line_of(arg, state), field + "." + state, "b%d named twice" % i)
                    event["backends"][i] = state
            if "active" not in event["backends"].values():
                err(arg.line, field + ".active", "at least one backend must stay active")
        elif kind == "tor-dns":
            if not s.tor:
                err(line_of(e, kind), field, "needs Tor traffic (traffic.tor: true)")
            event["for"] = need_num(arg, "for", field + ".", 0.1, 600, default=1)
            event["every"] = need_num(arg, "every", field + ".", 0.05, 60, default=0.25)
        elif kind == "pop":
            if s.sites != 2:
                err(line_of(e, kind), field, "needs the second site (sites: 2)")
            to = arg.get("to")
            if to is not None and to not in SITES:
                err(line_of(arg, "to"), field + ".to", "one of %s, got %r" %
                    (", ".join(SITES), to))
            h = arg.get("how", "withdraw")
            if h not in POP_HOWS:
                err(line_of(arg, "how"), field + ".how", "one of %s, got %r" %
                    (", ".join(POP_HOWS), h))
            event["to"], event["how"] = to, h
        elif kind == "etcd-member":
            a = arg.get("action")
            if a not in ETCD_ACTIONS:
                err(line_of(arg, "action"), field + ".action", "one of %s, got %r" %
                    (", ".join(ETCD_ACTIONS), a))
            event["action"] = a
            ms = arg.get("members")
            ms = list(ETCD_MEMBERS) if ms == "all" else ms
            if not isinstance(ms, list) or not ms or any(m not in ETCD_MEMBERS for m in ms):
                err(line_of(arg, "members"), field + ".members", "a list of %s, or all, "
                    "got %r" % (", ".join(map(str, ETCD_MEMBERS)), arg.get("members")))
                ms = []
            event["members"] = sorted(set(ms))
            if s.etcd is None:
                err(line_of(e, kind), field, "needs a scenario run from etcd (etcd: {})")
        elif kind == "etcd-path":
            a = arg.get("action")
            if a not in ETCD_PATH_ACTIONS:
                err(line_of(arg, "action"), field + ".action", "one of %s, got %r" %
                    (", ".join(ETCD_PATH_ACTIONS), a))
            event["action"] = a
            x = arg.get("site")
            if x != "b":
                err(line_of(arg, "site"), field + ".site", "b (the members are site a's: "
                    "only site b reaches them over a path), got %r" % (x,))
            event["site"] = x
            if s.sites != 2:
                err(line_of(e, kind), field, "needs the second site (sites: 2)")
            if s.etcd is None:
                err(line_of(e, kind), field, "needs a scenario run from etcd (etcd: {})")
        elif kind == "reload":
            event["nodes"] = (_nodes(known_nodes, arg["nodes"], line_of(arg, "nodes"), field + ".nodes", err)
                              if "nodes" in arg and arg["nodes"] != "all" else list(known_nodes))
        if at is not None:
            s.events.append(event)
    s.events.sort(key=lambda e: e["at"])  # stable: same-time events keep file order
    # BIRD installs plain multipath routes: a resilient nexthop group is the static
    # lab's (ip nexthop), so such a scenario cannot have BGP events or policy.
    # Two sites: the router learns the VIPs from both by BGP (the standby site's longer
    # AS path): no static routes.
    s.uses_bgp = bool(s.bgp_prepend or s.bgp_med or s.bgp_flowpin or s.sites == 2 or
                      any(e["kind"] in BGP_EVENTS or e["kind"] == "pop" for e in s.events))
    if s.sites == 2 and s.route_group == "resilient":
        err(line_of(doc, "route"), "route.group", "two sites need BGP routing, and "
            "resilient is static routing (BIRD programs no resilient nexthop group)")
    elif s.uses_bgp and s.route_group == "resilient":
        for e in s.events:
            if e["kind"] in BGP_EVENTS:
                err(e["line"], "events", "%s needs BGP routing, and route.group resilient "
                    "is static routing (BIRD programs no resilient nexthop group)" % e["kind"])
        if g is not None:
            err(line_of(doc, "bgp"), "bgp", "needs BGP routing, and route.group resilient "
                "is static routing (BIRD programs no resilient nexthop group)")

    # expectations
    s.expect = {}
    x = doc.get("expect")
    if not isinstance(x, Mapping):
        err(line_of(doc, "expect"), "expect", "missing: a mapping mode -> %s" % "|".join(EXPECT_VALUES))
    else:
        # QUIC scenarios: one expectation per QUIC VIP (lablib.QUIC_VIPS), by its name
        # Tor scenarios: every mode, and `dns` (the exit's queries to the resolver VIP)
        # when it has tor-dns events
        s.tor_dns = any(e["kind"] == "tor-dns" for e in s.events)
        cols = QUIC_COLUMNS if s.quic else MODES
        if s.tor:
            cols = [k for k in TOR_EXPECT_KEYS if k != "dns" or s.tor_dns]
        check_keys(x, set(cols), "expect")
        for m in cols:
            if m not in x:
                err(x.line, "expect." + m, "missing (every mode's expectation is stated)")
            elif x[m] not in EXPECT_VALUES:
                err(line_of(x, m), "expect." + m, "one of %s, got %r" %
                    (", ".join(EXPECT_VALUES), x[m]))
            else:
                s.expect[m] = x[m]
    if errors:
        raise ScenarioError("\n".join(errors))
    return s


def _nodes(known, v, line, field, err):
    if not isinstance(v, list) or not v:
        err(line, field, "must name LB nodes (%s)" % ", ".join(known))
        return []
    out = []
    for n in v:
        if n not in known:
            err(line, field, "no LB node %r (known: %s%s)" % (
                n, ", ".join(known), "; %s with sites: 2" % ", ".join(LB_NODES_B)
                if n in LB_NODES_B else ""))
        elif n in out:
            err(line, field, "%r named twice" % n)
        else:
            out.append(n)
    return out


def _vips(v, line, field, err):
    v = [v] if isinstance(v, str) else v
    if not isinstance(v, list) or not v:
        err(line, field, "must name VIPs (%s)" % ", ".join(VIP_NAMES))
        return []
    out = []
    for n in v:
        if n not in VIP_NAMES:
            err(line, field, "no VIP %r (known: %s)" % (n, ", ".join(VIP_NAMES)))
        elif n not in out:
            out.append(n)
    return out


def _ids(known, v, line, field, err):
    if not isinstance(v, list):
        err(line, field, "must be a list of backend ids")
        return []
    out = []
    for i in v:
        if not isinstance(i, int) or isinstance(i, bool) or i not in known:
            err(line, field, "backend id must be 1..%d (b1..b%d)%s, got %r" %
                (len(BACKENDS), len(BACKENDS), "" if len(known) == len(BACKENDS) else
                 " or %d..%d (site b)" % (len(BACKENDS) + 1, len(known)), i))
        else:
            out.append(i)
    return out
