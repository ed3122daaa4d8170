/* SPDX-License-Identifier: MIT */
/*
 * The backend agent's contract: bpf/backend.bpf.c (tc ingress) and its loader
 * lib/backend.c, `flowpin backend`, the tests. docs/backend.md is the operator's view.
 *
 * Maps pinned under <pin-root>/backend/ (default pin root /sys/fs/bpf/flowpin):
 *   counters    per-CPU array, FP_BACKEND_NR_COUNTERS x __u64 (index: enum fp_backend_counter);
 *               its length is the layout check: adding a counter changes it, and
 *               `backend stats` refuses a pinned map of another length (another build)
 *   lb_sources  LPM trie, struct fp_backend_src_key -> __u8 (1): allowed outer sources
 *   state       array, 1 x struct fp_backend_attach_info: who attached the program, where
 *
 * Maps filled at load and not pinned (the program holds them; `backend up` reloads all):
 *   self_addrs  hash, struct fp_backend_addr -> __u8: this host's addresses (outer
 *               destination check, loop guard)
 *   vips        hash, struct fp_backend_addr -> __u8: the config's VIP addresses, the
 *               only inner destinations accepted
 *   next_hops   hash, struct fp_backend_hop_key -> __u8: (VIP address, backend address)
 *               of every backend of the config, the only second-chance destinations
 *   tickets     hash, struct fp_backend_ticket_key -> struct fp_backend_ticket: every
 *               TCP VIP of the config, and this host's id on those with TCP tickets
 *
 * Programs: fp_backend_ingress on the device's tc ingress (decapsulation, second chance,
 * TCP tickets' TSecr restored), fp_backend_egress on its tc egress (TCP tickets written
 * into the TSval of segments from a ticket VIP). The ticket key, derived from hash_key
 * (fp_ticket_key_derive()), is the programs' rodata.
 */
#ifndef FLOWPIN_BACKEND_H
#define FLOWPIN_BACKEND_H

#include <flowpin/compiler.h>

/*
 * Every verdict of the ingress program has exactly one counter; (name, meaning).
 * The first nine are the program's decisions; the rest split "deliver" by reason so
 * no verdict goes uncounted. The ticket_* counters are no verdicts: they count what the
 * TCP tickets (flowpin/ticket.h) did to a segment, the egress program's work included,
 * beside the segment's verdict.
 */
#define FP_BACKEND_COUNTERS(X)                                                                    \
	X(SYN_LOCAL, "syn_local", "inner TCP SYN, delivered locally")                             \
	X(ESTABLISHED_LOCAL, "established_local",                                                 \
	  "inner TCP segment of a local socket (established, request, timewait), delivered")      \
	X(SYNCOOKIE_LOCAL, "syncookie_local", "inner TCP ACK with a valid SYN cookie, delivered") \
	X(FORWARDED, "forwarded", "no local socket: sent on to the next hop (second chance)")     \
	X(LAST_RESORT, "last_resort",                                                             \
	  "no local socket, no hop left: delivered (stack answers RST)")                          \
	X(LOOP_GUARD, "loop_guard",                                                               \
	  "hop index out of range or next hop is this backend: delivered, never forwarded")       \
	X(NOT_ALLOWED, "not_allowed",                                                             \
	  "encapsulated packet from a source not in lb_sources: dropped")                         \
	X(MALFORMED, "malformed", "encapsulated packet with a bad or truncated header: dropped")  \
	X(NOT_FLOWPIN, "not_flowpin", "not for the encapsulation port: passed on untouched")      \
	X(UDP_LOCAL, "udp_local", "inner UDP, delivered locally")                                 \
	X(ICMP_LOCAL, "icmp_local", "inner ICMP/ICMPv6, delivered locally")                       \
	X(OTHER_LOCAL, "other_local", "inner protocol other than TCP/UDP/ICMP, delivered")        \
	X(NO_ROUTE, "no_route", "forward wanted but no route to the next hop: delivered")         \
	X(ERROR, "error", "a helper failed while rewriting the packet: dropped")                  \
	X(NOT_LOCAL, "not_local",                                                                 \
	  "encapsulated packet not addressed to this host (group MAC, outer destination not "     \
	  "an address of this host): dropped")                                                    \
	X(BAD_CHECKSUM, "bad_checksum", "outer IPv4 header checksum wrong: dropped")              \
	X(NOT_VIP, "not_vip", "inner destination is not a VIP address of the config: dropped")    \
	X(BAD_HOP, "bad_hop",                                                                     \
	  "next hop is not a configured backend of the packet's VIP: dropped, never forwarded")   \
	X(PROBE, "probe", "empty datagram from an LB (its neighbour probe, `lb up`): dropped")    \
	X(TUNNEL_PROBE, "tunnel_probe",                                                           \
	  "tunnel health probe from an LB: reflected to it as the reply")                         \
	X(TUNNEL_PROBE_REPLY, "tunnel_probe_reply",                                               \
	  "tunnel probe reply arriving: dropped, never answered (no ping-pong)")                  \
	X(TUNNEL_PROBE_TRUNCATED, "tunnel_probe_truncated",                                       \
	  "GUE control message shorter than a tunnel probe: dropped")                             \
	X(TUNNEL_PROBE_PAYLOAD, "tunnel_probe_payload",                                           \
	  "tunnel probe with bytes after its header (it has none): dropped")                      \
	X(CONTROL_UNKNOWN, "control_unknown",                                                     \
	  "GUE control message of another type or magic (no flowpin probe): dropped")             \
	X(TICKET_WRITTEN, "ticket_written",                                                       \
	  "egress: TCP segment from a ticket VIP, its TSval rewritten into a ticket")             \
	X(TICKET_RESTORED, "ticket_restored",                                                     \
	  "ingress: TCP segment to a ticket VIP delivered with its TSecr restored")               \
	X(TICKET_NO_TIMESTAMP, "ticket_no_timestamp",                                             \
	  "ingress: TCP segment to a ticket VIP without a timestamp option (no ticket)")          \
	X(TICKET_MISMATCH, "ticket_mismatch",                                                     \
	  "ingress: TCP ACK to a ticket VIP whose TSecr names another backend: left as it is")    \
	X(NOT_OUR_MAC, "not_our_mac",                                                             \
	  "encapsulated packet in a unicast frame to another MAC (flooded by a switch, "          \
	  "promiscuous device): dropped, as the stack drops it")

#define FP_BACKEND_COUNTER_ENUM(id, name, help) FP_BACKEND_##id,
enum fp_backend_counter { FP_BACKEND_COUNTERS(FP_BACKEND_COUNTER_ENUM) FP_BACKEND_NR_COUNTERS };
#undef FP_BACKEND_COUNTER_ENUM

#define FP_BACKEND_MAX_LB_SOURCES 1024
#define FP_BACKEND_MAX_SELF	  256	/* own addresses (outer destination, loop guard) */
#define FP_BACKEND_MAX_NEXT_HOPS  65536 /* (VIP, backend) pairs of the config */
#define FP_BACKEND_MAX_VIPS	  64	/* FP_MAX_VIPS (flowpin/config.h, userspace only) */

/*
 * LPM trie key. The family comes first and is part of every prefix, so an IPv4 prefix
 * never matches an IPv6 source (an IPv4-mapped ::ffff:a.b.c.d above all) and the
 * reverse. prefixlen = FP_BACKEND_SRC_FAMILY_BITS + the prefix length in the family's
 * own terms (IPv4 /24: 32 + 24); IPv4 addresses fill addr[0..3], the rest is zero.
 */
struct fp_backend_src_key {
	__u32 prefixlen;
	__u8 family; /* 4 or 6 */
	__u8 pad[3]; /* zero */
	__u8 addr[16];
};
FP_STATIC_ASSERT(sizeof(struct fp_backend_src_key) == 24, "LPM key: 4 + 4 + 16 bytes");
#define FP_BACKEND_SRC_FAMILY_BITS 32

/* An address of either family, IPv4 IPv4-mapped (flowpin/flow.h): key of self_addrs, vips. */
struct fp_backend_addr {
	__u8 a[16];
};

/* Key of next_hops: both addresses IPv4-mapped for IPv4. */
struct fp_backend_hop_key {
	__u8 vip[16];
	__u8 backend[16];
};
FP_STATIC_ASSERT(sizeof(struct fp_backend_hop_key) == 32, "two addresses, no padding");

/*
 * Key of tickets: every TCP VIP of the config, by (address, port) as the VIP says it
 * (port 0 = every port; the programs try the segment's port first, then 0).
 */
struct fp_backend_ticket_key {
	__u8 vip[16]; /* IPv4-mapped for IPv4 */
	__be16 port;  /* the VIP's port, network order; 0 for a port-0 VIP */
	__u8 proto;   /* IPPROTO_TCP */
	__u8 pad;     /* zero */
};
FP_STATIC_ASSERT(sizeof(struct fp_backend_ticket_key) == 20, "no hidden padding");

/*
 * Value of tickets: what this host writes into the TCP timestamps of the VIP's flows.
 * bits 0: no tickets (the VIP has none, or this host is none of its backends); such a
 * VIP's entry keeps a port-0 ticket VIP of the same address from applying to it.
 */
struct fp_backend_ticket {
	__u16 sid; /* this host's backend id in the VIP, < 2^bits */
	__u8 bits; /* the VIP's tickets.bits (K), 1..FP_TICKET_MAX_BITS; 0 = none */
	__u8 pad;  /* zero */
};
FP_STATIC_ASSERT(sizeof(struct fp_backend_ticket) == 4, "no hidden padding");

/* Who attached the program (written by `flowpin backend up`, read by down/stats). */
struct fp_backend_attach_info {
	__u32 pid;	    /* the foreground `flowpin backend up` process */
	__u32 ifindex;	    /* device with the tc filters (ingress, egress), in the netns: */
	__u64 netns_cookie; /* SO_NETNS_COOKIE of the agent's network namespace */
	__u32 handle;	    /* tc filter handle and priority, for detaching */
	__u32 priority;
};
FP_STATIC_ASSERT(sizeof(struct fp_backend_attach_info) == 24, "no hidden padding");

#define FP_BACKEND_PIN_SUBDIR "backend"
#define FP_DEFAULT_PIN_ROOT   "/sys/fs/bpf/flowpin"

#ifndef __bpf__
#include <stdbool.h>
#include <stddef.h>
#include <flowpin/config.h>
#include <flowpin/instance.h>

FP_STATIC_ASSERT(FP_BACKEND_MAX_VIPS >= FP_MAX_VIPS, "every VIP of a config fits the vips map");

/* Load-time settings of the program (rodata and the lb_sources map). */
struct fp_backend_opts {
	__u16 encap_port; /* host order; 0 = FP_DEFAULT_ENCAP_PORT */
	const struct fp_prefix *lb_sources;
	size_t n_lb_sources;
	const struct fp_addr *self_addrs; /* this host's addresses: outer destination, loop guard */
	size_t n_self_addrs;		  /* at most FP_BACKEND_MAX_SELF */
	/*
	 * The fleet's VIPs with all their backends (any state): inner destinations are
	 * accepted only for these VIP addresses, and second chance forwards only to a
	 * backend of the inner destination's VIP. No VIPs: every encapsulated packet is
	 * dropped (not_vip).
	 */
	const struct fp_vip_cfg *vips;
	size_t n_vips;
	/*
	 * The fleet's hash_key, needed when this host is a backend of a VIP with TCP
	 * tickets (the loader derives the ticket key from it); NULL otherwise.
	 */
	const struct fp_hash_key *hash_key;
	/* The config these come from, for FILE:LINE messages (fp_backend_update()); may be NULL. */
	const struct fp_config *cfg;
};

struct fp_backend;

const char *fp_backend_counter_name(unsigned int counter);
const char *fp_backend_counter_help(unsigned int counter);

/* Opens and loads the program with @opts. Returns 0 or a negative errno (message printed). */
int fp_backend_load(const struct fp_backend_opts *opts, struct fp_backend **out);
/*
 * fp_backend_update - the loaded (and running) program takes @opts in place: its maps
 * (allowed LB sources, own addresses, VIPs, (VIP, backend) pairs, tickets) are made to
 * hold exactly @opts' sets, entries in both never missing, the others deleted: after
 * it, the program forwards only to a backend of @opts. Refused before anything changes
 * (-EINVAL, FILE:LINE: FIELD messages from @opts->cfg) what the program cannot take
 * without a restart: another encap_port, TCP tickets on this host when it was loaded
 * without, another ticket key (hash_key) while it writes tickets; -E2BIG past its
 * bounds. Should writing the maps fail, they are set back to @previous (what ran).
 */
/* fp_backend_update()'s checks alone: whether @opts would be taken. */
int fp_backend_check_update(const struct fp_backend *b, const struct fp_backend_opts *opts);
int fp_backend_update(struct fp_backend *b, const struct fp_backend_opts *opts,
		      const struct fp_backend_opts *previous);
void fp_backend_destroy(struct fp_backend *b);	    /* detaches and unpins what it did; NULL ok */
int fp_backend_prog_fd(const struct fp_backend *b); /* ingress */
int fp_backend_egress_prog_fd(const struct fp_backend *b); /* egress (TCP tickets) */
/* How many TCP VIPs this host writes tickets for (backend entries on ticket VIPs). */
size_t fp_backend_ticket_vips(const struct fp_backend *b);
int fp_backend_counters_fd(const struct fp_backend *b);

/*
 * fp_backend_attach - tc ingress and egress filters on @ifindex (creates the clsact qdisc
 * if missing; a qdisc that existed before is left in place on detach). Returns 0 or a
 * negative errno.
 */
int fp_backend_attach(struct fp_backend *b, int ifindex);
int fp_backend_detach(struct fp_backend *b);

/* Pins the maps under @dir (created; the program's own maps, see the top of this file). */
int fp_backend_pin(struct fp_backend *b, const char *dir);

/* Removes the pinned maps (names at the top of this file) and @dir if it is then empty. */
int fp_backend_unpin_dir(const char *dir);

/*
 * The running agent is the instance (flowpin/instance.h) of its pin directory @dir: it
 * holds the lock on @dir from before it attaches until it exits. fp_backend_claim makes
 * @dir if missing and claims it: 0, -EBUSY while an agent runs there, or a negative errno.
 */
int fp_backend_claim(const char *dir, struct fp_instance **out);
/* Reads <dir>/state: 0, -ENOENT when nothing is pinned, or another negative errno. */
int fp_backend_read_state(const char *dir, struct fp_backend_attach_info *info);

/* Cookie of the caller's network namespace (SO_NETNS_COOKIE). Returns 0 or a negative errno. */
int fp_netns_cookie(__u64 *cookie);

/*
 * Detaches the filter described by @info (from the pinned state map; the agent is gone).
 * -EXDEV when the caller is not in the agent's network namespace.
 */
int fp_backend_detach_info(const struct fp_backend_attach_info *info);

/*
 * Sums a per-CPU counters map (ours or pinned) into @out. Returns 0 or a negative errno;
 * -EPROTO when the map does not have FP_BACKEND_NR_COUNTERS counters (a pinned map of
 * an agent of another build).
 */
int fp_backend_read_counters(int counters_fd, __u64 out[FP_BACKEND_NR_COUNTERS]);

#endif /* !__bpf__ */
#endif
