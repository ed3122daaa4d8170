/* SPDX-License-Identifier: MIT */
/*
 * Map layouts shared by bpf/lb.bpf.c and userspace (flowpin lb, replay, tests).
 * Every struct here is read by both sides: fixed-width types, explicit padding,
 * sizes asserted.
 */
#ifndef FLOWPIN_MAPS_H
#define FLOWPIN_MAPS_H

#include <flowpin/compiler.h>
#include <flowpin/flow.h>

#define FP_NO_BACKEND 0 /* backend ids start at 1 */

/* One Maglev bucket of a VIP's active table: owner now and owner one generation ago. */
struct fp_bucket {
	__u16 owner;	/* backend id in generation g+1 (FP_NO_BACKEND: none) */
	__u16 previous; /* backend id in generation g; == owner when the bucket did not move */
};
FP_STATIC_ASSERT(sizeof(struct fp_bucket) == 4, "bucket is two backend ids");

/*
 * Capacities. A VIP owns a block of FP_BACKEND_SLOTS entries in the backend and
 * traffic arrays (index vip_index * FP_BACKEND_SLOTS + backend id), because backend ids
 * are unique within a VIP only. Slot 0 (FP_NO_BACKEND) of a VIP's traffic block holds
 * the VIP's own counters.
 */
#define FP_BACKEND_SLOTS 4096 /* backend ids 1..4095 (FP_MAX_BACKEND_ID) */
#define FP_VIP_SLOTS_MAX 64   /* = FP_MAX_VIPS of flowpin/config.h */
#define FP_POP_NAME_LEN	 32   /* = FP_POP_NAME_MAX of flowpin/config.h, with its NUL */

/* Key of the `vips` hash map. IPv4 stored IPv4-mapped (flowpin/flow.h). */
struct fp_vip_key {
	__u8 addr[16];
	__be16 port; /* 0 = every port */
	__u8 proto;  /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;    /* always zero */
};
FP_STATIC_ASSERT(sizeof(struct fp_vip_key) == 20, "vip key");

/*
 * `vip_addrs` hash, one entry per address any VIP uses (whatever its ports and
 * protocols), written by userspace at every apply. The program reads it only for
 * packets it does not serve: to such an address they are dropped unless the address
 * is local to the node (bpf/lb.bpf.c vip_unserved(), the loop rule).
 */
struct fp_vip_addr_key {
	__u8 addr[16]; /* IPv4-mapped for IPv4 */
};
FP_STATIC_ASSERT(sizeof(struct fp_vip_addr_key) == 16, "vip address key");

struct fp_vip_addr {
	__u32 flags; /* none defined yet: 0 */
};
FP_STATIC_ASSERT(sizeof(struct fp_vip_addr) == 4, "vip address value");

#define FP_VIP_F_HASH_ADDRS 0x01 /* flow key without ports: fragments follow the flow */
#define FP_VIP_F_QUIC_LB    0x02 /* UDP VIP with quic_lb: step 3 reads QUIC-LB CIDs */

/*
 * Value of the `vips` map. Userspace replaces the whole value in one update: that is
 * the generation flip (a hash map update is seen whole or not at all by readers).
 */
struct fp_vip {
	__u32 index;	  /* 0..max_vips-1: block in buckets/backends/traffic */
	__u32 generation; /* table generation now active (carried in the wire header) */
	__u8 slot;	  /* active half of this VIP's bucket block: 0 or 1 */
	__u8 pinning;	  /* enum fp_pinning (flowpin/pinning.h) */
	__u8 flags;	  /* FP_VIP_F_* */
	__u8 ticket_bits; /* TCP VIP with tickets (flowpin/ticket.h): K; 0 = none */
	__u32 n_list;	  /* none/table modes: backends in buckets[0..n_list-1] of the slot */
};
FP_STATIC_ASSERT(sizeof(struct fp_vip) == 16, "vip value");

/*
 * `vip_cache` per-CPU array, FP_VIP_CACHE_SLOTS entries, direct-mapped by a fold of the
 * key (bpf/lb.bpf.c vip_cache_slot()): the `vips` map's answer for a packet's
 * (address, port, protocol), whether it came from the port's entry or the VIP's
 * port-0 entry. Trusted only while epoch == fp_info.cache_epoch (bumped after every
 * apply, so a flip, an added or removed VIP is never hidden). Only VIPs are cached:
 * a packet for no VIP always asks the map.
 */
#define FP_VIP_CACHE_SLOTS 256 /* power of two */
struct fp_vip_cache_entry {
	struct fp_vip_key key; /* the packet's, not necessarily the map entry's (port 0) */
	__u32 epoch;	       /* fp_info.cache_epoch when filled; 0 = empty */
	struct fp_vip vip;
};
FP_STATIC_ASSERT(sizeof(struct fp_vip_cache_entry) == 40, "vip cache entry");

/*
 * `buckets` array (mmapable), seen by userspace as one flat struct fp_bucket[]: for VIP
 * index v and slot s, buckets [(v * 2 + s) * table_size, +table_size)
 * (fp_bucket_index()). Hash modes: the Maglev table as owner pairs. none/table modes:
 * the first n_list buckets are the active backends sorted by id (owner == previous).
 *
 * BPF arrays store values at an 8-byte stride, so each array value holds two
 * consecutive buckets (array index = bucket index / 2): 4 bytes per bucket, not 8. A new
 * flow's bucket is a cold line; half the table is half the lines and TLB entries.
 * Userspace writes a bucket as one aligned 32-bit store.
 */
struct fp_bucket_pair {
	struct fp_bucket b[2];
};
FP_STATIC_ASSERT(sizeof(struct fp_bucket_pair) == 8, "array map element stride");

/* Array values the `buckets` map needs for @n buckets. */
FP_INLINE __u32 fp_bucket_pairs(__u32 n)
{
	return (n + 1) / 2;
}

FP_INLINE __u32 fp_bucket_index(__u32 vip_index, __u32 slot, __u32 table_size, __u32 bucket)
{
	return (vip_index * 2 + slot) * table_size + bucket;
}

enum fp_backend_flags {
	FP_BACKEND_F_V6 = 0x01,	      /* addr is IPv6 (else IPv4-mapped) */
	FP_BACKEND_F_DOWN = 0x02,     /* sessions pointing here are ignored (re-hashed) */
	FP_BACKEND_F_DRAINING = 0x04, /* keeps its sessions, no buckets (informational) */
	/* Not in the config any more: keeps its sessions until they expire, no buckets
	 * (informational; lib/lb.c prune_backends() empties the entry once no live
	 * session names it). */
	FP_BACKEND_F_REMOVED = 0x08,
	/* A backend of another site (flowpin/config.h `pops`): in no table of this node;
	 * a ticket naming it sends the packet to one of that site's LB nodes (`pop`). */
	FP_BACKEND_F_REMOTE = 0x10,
};

/*
 * The program's cache of bpf_fib_lookup()'s answer for a backend, kept in the backend
 * entry itself (no extra map lookup). Written by the program only, at most once per
 * FP_NEXTHOP_TTL_NS per backend; userspace writes it as zeros (= not resolved), so
 * every apply re-resolves. A neighbour or route change reaches the data path within
 * the TTL.
 */
#define FP_NEXTHOP_TTL_NS 1000000000ULL
struct fp_nexthop {
	__u8 resolved_for[16]; /* the address it was resolved for (an entry may be rewritten) */
	__u64 expires_ns;      /* bpf_ktime_get_coarse_ns() deadline; 0 = not resolved */
	__u32 ifindex;	       /* egress device */
	__u32 ingress;	       /* ingress device the lookup was made for */
	__u16 mtu;	       /* route MTU, checked against every packet */
	__u8 dmac[6];
	__u8 smac[6];
	__u16 pad;
};
FP_STATIC_ASSERT(sizeof(struct fp_nexthop) == 48, "next-hop cache");

/* `backends` array, index vip_index * FP_BACKEND_SLOTS + id. All zero = no backend. */
struct fp_backend_entry {
	__u8 addr[16];
	__u16 id; /* == the index's id when present; 0 = empty entry */
	__u16 flags;
	__u8 pop; /* FP_BACKEND_F_REMOTE: its site, the index into `pops` */
	__u8 pad[3];
	struct fp_nexthop nh; /* the program's cache; zero from userspace */
};
FP_STATIC_ASSERT(sizeof(struct fp_backend_entry) == 72, "backend entry");

/*
 * A fleet of sites (flowpin/config.h `pops`; bpf/pop.h, docs/design.md "Cross-site
 * forwarding"). Three maps, written by lib/lb.c at every apply:
 *  - `pops` array, index the site (its place in the config): struct fp_pop, how many
 *    LB addresses of each family the site has;
 *  - `pop_lbs` array, index site * FP_POP_LB_SLOTS + i: the site's LB addresses as
 *    struct fp_backend_entry (addr, FP_BACKEND_F_V6, the program's next-hop cache), its
 *    IPv4 ones first (i < n_v4), then its IPv6 ones: the outer destinations of
 *    cross-site hops;
 *  - `pop_addrs` hash, struct fp_vip_addr_key -> struct fp_pop_addr: every LB address
 *    of every site, with whether it is this node's site's. A cross-site packet is
 *    accepted only from another site's address, to one of this site's.
 */
#define FP_POP_SLOTS	16 /* = FP_MAX_POPS of flowpin/config.h */
#define FP_POP_LB_SLOTS 16 /* = FP_MAX_POP_LBS */
struct fp_pop {
	__u8 n_v4; /* IPv4 LB addresses: pop_lbs[site * FP_POP_LB_SLOTS + 0 .. n_v4) */
	__u8 n_v6; /* IPv6 ones: pop_lbs[... + n_v4 .. n_v4 + n_v6) */
	__u16 pad;
};
FP_STATIC_ASSERT(sizeof(struct fp_pop) == 4, "pops value");

struct fp_pop_addr {
	__u8 pop;   /* its site */
	__u8 local; /* 1: this node's own site */
	__u16 pad;
};
FP_STATIC_ASSERT(sizeof(struct fp_pop_addr) == 4, "pop_addrs value");

/* TCP state of a session entry: decides its idle timeout. */
enum fp_tcp_state {
	FP_SESS_UDP = 0,     /* UDP flow: timeout udp */
	FP_SESS_TCP_SYN = 1, /* created from a SYN (table mode): timeout transitory */
	FP_SESS_TCP_EST = 2, /* seen a non-SYN segment: timeout established */
	/* Not set any more: a FIN or RST proves nothing to the LB (bpf/lb.bpf.c, pinning
	 * rule); the value stays reserved. Timeout transitory. */
	FP_SESS_TCP_CLOSING = 3,
	/* Not an entry: a probation mark kept in the session table, where the flow's entry
	 * would go (struct fp_session_bucket below): backend = the one chosen for the flow's first packet,
	 * last_seen_ns = when; live for the transitory timeout. Lookups skip it. */
	FP_SESS_MARK = 4,
};

/*
 * A session entry's value. An entry is created only when a flow is promoted from
 * probation (below; bpf/lb.bpf.c "Session admission").
 */
struct fp_session {
	__u64 last_seen_ns; /* bpf_ktime_get_coarse_ns(), refreshed at most every FP_SESSION_REFRESH_NS */
	__u32 generation; /* generation the entry was created in */
	__u16 backend;	  /* backend id within the VIP */
	__u8 state;	  /* enum fp_tcp_state */
	__u8 pad;
	/* fp_hash_sport() of the flow: a session hit needs no flow hash. Host order. */
	__u16 outer_sport;
	__u16 pad2;
	__u32 pad3;
};
FP_STATIC_ASSERT(sizeof(struct fp_session) == 24, "session value");

/*
 * `sessions`: flowpin's own set-associative table in one BPF array (mmapable), shared
 * by every CPU. Array element i is bucket i: FP_SESSION_WAYS slots of one cache line
 * each, the flow key and its entry side by side (a hit reads one line, seldom two; the
 * kernel's LRU hash read a bucket head and an element of 112 bytes, two or three
 * lines, and 139 bytes of memory per entry against 64 here).
 *
 * A flow has two candidate buckets, first and second (fp_session_hash(): a keyed hash,
 * pair-multiply-shift; fp_session_first()/fp_session_second(): multiply-shift range
 * reductions, so any number of buckets works: 10 million sessions take 640 MB, not the
 * 1 GiB of the next power of two). A new entry goes to its first bucket while that
 * holds fewer than FP_SESSION_SPILL entries, else to the less loaded of the two: so
 * most flows sit in their first bucket (one line read on a hit; 81% of them at half
 * load) and bucket pairs seldom run out of room before the table is half full
 * (bench/results.md: evictions measured and simulated). Slots fill in order and are never emptied one by one (only
 * fp_lb_clear_sessions() empties the table), so a lookup stops at the first empty slot
 * of the first bucket when it is below FP_SESSION_SPILL (nothing of it spilled), else
 * reads the second bucket too.
 *
 * A promotion (the only insert) takes the flow's own old slot in either bucket, else
 * room as above (an expired entry of the first bucket before spilling), else an
 * expired entry of the second, else the least recently seen live entry of the two
 * buckets: that flow loses its pinning, counted `session_evict` (the table is full for
 * this flow). Only promotions insert, under the per-CPU new-flow rate, so a flood of
 * never-seen tuples evicts nothing (bpf/lb.bpf.c "Session admission").
 *
 * Probation marks (bpf/lb.bpf.c "Session admission") live here too, as slots of state
 * FP_SESS_MARK placed by the rule of a new entry (own slot, first bucket below
 * FP_SESSION_SPILL, its expired slots, the less loaded of the two, the second's expired
 * slots) and never further: never in a live entry's or another flow's live mark's slot.
 * So the packet that finds its mark (normally the next one) reads the lines its
 * session lookup just read, its promotion rewrites that slot in place, and the two
 * choices keep balancing the load (marks placed first-fit in the first bucket made
 * 2,826 of 1,000,000 flows evict others at half load, against 20). A flood of
 * never-seen tuples fills empty slots and evicts nothing. A flow whose two buckets
 * have no such slot is marked in the `probation` array below (a flood churns that),
 * and a mark is looked for there only when neither bucket has an empty slot (slots are
 * never emptied, so buckets that had none when the mark was made still have none).
 * Marks count as used slots for the spill rule; a promotion takes another flow's live
 * mark (probation_evict) before it evicts an entry; lookups and the walks of userspace
 * (`lb flows`, counts) skip marks.
 *
 * A slot being rewritten carries key.proto = FP_SESSION_WRITING (matches no packet,
 * does not end a lookup) until its last store: a reader on another CPU never takes a
 * half-written entry for a flow's (x86 keeps stores in order; the proto byte is written
 * first and last). Two CPUs promoting into one slot at the same moment can still mix
 * their stores (two promotions to one bucket within nanoseconds); the kernel's LRU
 * took a lock there.
 */
#define FP_SESSION_WAYS	   4
#define FP_SESSION_SPILL   2	/* entries of a first bucket from which new flows may spill */
#define FP_SESSION_WRITING 0xff /* key.proto of a slot being rewritten */
struct fp_session_slot {
	struct fp_flow_key key; /* proto 0: empty */
	struct fp_session s;
};
FP_STATIC_ASSERT(sizeof(struct fp_session_slot) == 64, "one cache line");

struct fp_session_bucket {
	struct fp_session_slot way[FP_SESSION_WAYS];
};
FP_STATIC_ASSERT(sizeof(struct fp_session_bucket) == 64 * FP_SESSION_WAYS, "bucket");

/* Buckets for a table of @entries sessions (rounded up to whole buckets). */
FP_INLINE __u32 fp_session_buckets(__u32 entries)
{
	return (entries + FP_SESSION_WAYS - 1) / FP_SESSION_WAYS;
}

/*
 * The session table's hash key: ten 64-bit words, derived by the loader from the fleet
 * hash key (lib/lb.c), so a take-over with the same config finds every entry where
 * the running program put it.
 */
#define FP_SESSION_HASH_WORDS 10
struct fp_session_hash_key {
	__u64 k[FP_SESSION_HASH_WORDS];
};

/*
 * Pair-multiply-shift (Dietzfelbinger; Thorup, "High speed hashing for integers and
 * strings"): the ten 32-bit words of the flow key, pairwise added to key words and
 * multiplied, summed, then mixed. Seven multiplications: a few ns where SipHash costs ~40
 * (bench/results.md), and the hit path needs no flow hash (the entry keeps the outer
 * port). Universal for a key nobody outside knows, not a PRF: what an attacker could
 * aim at a bucket is evicting other flows of it, and only promoted flows (they must
 * repeat a tuple, under the new-flow rate) insert at all.
 */
FP_INLINE __u64 fp_session_hash(const struct fp_session_hash_key *key, const struct fp_flow_key *f)
{
	const __u32 *w = (const __u32 *)f;
	__u64 h = 0;

	h += (key->k[0] + w[0]) * (key->k[1] + w[1]);
	h += (key->k[2] + w[2]) * (key->k[3] + w[3]);
	h += (key->k[4] + w[4]) * (key->k[5] + w[5]);
	h += (key->k[6] + w[6]) * (key->k[7] + w[7]);
	h += (key->k[8] + w[8]) * (key->k[9] + w[9]);
	/* A bijective finalizer (MurmurHash3's fmix64): keys that differ in one word only
	 * make h linear in it, and both buckets come from h. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* First bucket of hash @h in a table of @buckets: its high half, range-reduced. */
FP_INLINE __u32 fp_session_first(__u64 h, __u32 buckets)
{
	return (__u32)(((h >> 32) * buckets) >> 32);
}

/* Second bucket: the low half, range-reduced. */
FP_INLINE __u32 fp_session_second(__u64 h, __u32 buckets)
{
	return (__u32)(((h & 0xffffffffULL) * buckets) >> 32);
}

#define FP_SESSION_REFRESH_NS 1000000000ULL /* one write per flow per second at most */

/*
 * `probation` array (mmapable), a power-of-two number of slots, one mark per slot: the
 * flows whose first packet this node forwarded without a session entry
 * (bpf/lb.bpf.c "Session admission"). A flow's slot and tag are bits of its keyed flow
 * hash (fp_probation_slot(), fp_probation_tag()): a flood cannot aim at a slot, and a
 * mark names its flow with a 32-bit fingerprint, not the tuple. Another flow hashing to
 * the slot overwrites the mark (probation_evict counts it when the mark was still
 * live): a flood churns this array, never the session table's entries. Used only for
 * flows whose first session bucket has no room for a mark (struct fp_session_bucket
 * above): on a table with room, marks sit beside the entries. A slot is written as one
 * aligned 64-bit store, so a reader on another CPU sees a mark whole or not at all.
 */
struct fp_probation_mark {
	__u32 tag;     /* fp_probation_tag() of the flow */
	__u16 backend; /* backend chosen for the first packet; FP_NO_BACKEND = empty slot */
	__u16 stamp;   /* fp_probation_stamp() of the first packet */
};
FP_STATIC_ASSERT(sizeof(struct fp_probation_mark) == 8, "one 64-bit store");

FP_INLINE __u32 fp_probation_slot(__u64 hash, __u32 slots)
{
	return (__u32)hash & (slots - 1);
}

FP_INLINE __u32 fp_probation_tag(__u64 hash)
{
	return (__u32)(hash >> 32);
}

/* Time in units of 2^30 ns (~1.07 s), wrapping every ~19.5 hours. */
FP_INLINE __u16 fp_probation_stamp(__u64 now_ns)
{
	return (__u16)(now_ns >> 30);
}

/* Ticks a mark stays live: the transitory timeout, and one more tick, so a mark never
 * dies at a tick boundary between two packets of a flow. */
FP_INLINE __u32 fp_probation_window(__u64 timeout_transitory_ns)
{
	return (__u32)(timeout_transitory_ns >> 30) + 1;
}

/*
 * `flow_cache` per-CPU array, FP_FLOW_CACHE_SLOTS entries, direct-mapped by a fold of
 * the flow key (bpf/lb.bpf.c flow_cache_slot()): established flows this CPU recently
 * forwarded from a session hit, with everything a session hit needs (VIP block,
 * generation, backend, outer port). A packet that finds its flow here skips the VIP
 * and session lookups (two kernel hash lookups: jhash over the key, bucket walk).
 *
 * An entry is trusted only while both hold:
 *  - epoch == fp_info.cache_epoch: userspace bumps that after every apply and every
 *    fp_lb_clear_sessions(), so no VIP, table or session change is ever hidden
 *    (the `vip_cache` below works the same way);
 *  - now < expires_ns: at most FP_FLOW_CACHE_TTL_NS (and a quarter of the session's
 *    idle timeout) after the session hit that filled it, so the session entry is
 *    still looked up, refreshed and its expiry checked at least that often.
 * SYN, FIN and RST segments, ICMP errors and fragments never use it (they change or
 * need the session's state). The backend entry is read on every packet as before, so
 * a backend marked down is seen at once. A collision only costs the slow path, and
 * a live entry is not replaced by another flow's fill until it expires: with more
 * flows than slots, replacing on every miss only evicted what the next packet of the
 * evicted flow would have found (first come keeps the slot for its TTL).
 *
 * Small on purpose: on a node whose flows do not fit, every probe that misses is a cold
 * line on top of the session lookup. With 4096 slots a session hit in bench_xdp's "many
 * flows" path cost ~7% more than without the cache (18.4x vs 17.6x the floor); with
 * 1024 (64 KiB per CPU) 17.3x, and bursts of a flow's packets still hit.
 */
#define FP_FLOW_CACHE_SLOTS  1024 /* power of two; 64 KiB per CPU */
#define FP_FLOW_CACHE_TTL_NS 1000000000ULL
struct fp_flow_cache_entry {
	struct fp_flow_key key;
	__u64 expires_ns;  /* bpf_ktime_get_coarse_ns() deadline */
	__u32 epoch;	   /* fp_info.cache_epoch when filled; 0 = empty */
	__u32 vip_index;   /* struct fp_vip index */
	__u32 generation;  /* struct fp_vip generation (carried in the wire header) */
	__u16 backend;	   /* backend id within the VIP */
	__u16 outer_sport; /* host order, as struct fp_session */
};
FP_STATIC_ASSERT(sizeof(struct fp_flow_cache_entry) == 64, "one cache line");

/*
 * A flow's slot in the flow cache: the key's five words folded and multiplied
 * (Fibonacci hashing), top bits. Not keyed and not the flow hash: someone who aims many
 * flows at one slot only sends them down the slow path, which they would take anyway.
 */
#define FP_FLOW_CACHE_BITS 10
FP_STATIC_ASSERT(FP_FLOW_CACHE_SLOTS == 1 << FP_FLOW_CACHE_BITS, "slots");
FP_INLINE __u32 fp_flow_cache_slot(const struct fp_flow_key *k)
{
	const __u64 *w = (const __u64 *)k;

	return (__u32)(((w[0] ^ w[1] ^ w[2] ^ w[3] ^ w[4]) * 0x9e3779b97f4a7c15ULL) >>
		       (64 - FP_FLOW_CACHE_BITS));
}

/*
 * QUIC-LB (bpf/quic.h, docs/design.md step 3). Three maps, written by
 * lib/lb.c at every apply:
 *  - `quic_lb` hash, key the VIP index (__u32), value struct fp_quic_lb: how the VIP's
 *    servers build their connection IDs. A hash, not an array: userspace replaces a
 *    value whole (a reader never sees half of a changed config).
 *  - `quic_servers` hash, key struct fp_quic_server_key (VIP index, server ID), value
 *    struct fp_quic_server: the backend id a server ID names in that VIP.
 *  - `quic_crypto` array, index the VIP index, value one kptr to the kernel's
 *    struct bpf_crypto_ctx (AES-128-ECB under the VIP's key), made and released by
 *    the SEC("syscall") program of bpf/quic_key.bpf.c, which lib/lb.c loads over
 *    this map and runs; userspace sees 8 opaque bytes per entry.
 */
#define FP_QUIC_LB_CID_MAX	 20 /* QUIC v1 connection IDs: at most 20 octets */
#define FP_QUIC_LB_SERVER_ID_MAX 15
enum fp_quic_lb_mode {
	FP_QUIC_LB_PLAINTEXT = 1, /* server ID in clear after the first octet */
	FP_QUIC_LB_AES_1PASS = 2, /* server ID + nonce = 16 octets: one AES-128-ECB block */
};

struct fp_quic_lb {
	__u8 config_id;	    /* 0..6: the top 3 bits of the first octet of its CIDs */
	__u8 server_id_len; /* 1..FP_QUIC_LB_SERVER_ID_MAX */
	__u8 nonce_len;
	__u8 mode; /* enum fp_quic_lb_mode */
	__u32 pad;
	/* Userspace only: a keyed hash of the AES key the VIP's `quic_crypto` context was
	 * made with (lib/lb.c), so an apply makes a context again only for a new key. */
	__u64 key_check;
};
FP_STATIC_ASSERT(sizeof(struct fp_quic_lb) == 16, "quic_lb value");

/* A VIP's CID length: first octet, server ID, nonce. */
FP_INLINE __u32 fp_quic_lb_cid_len(const struct fp_quic_lb *q)
{
	return 1 + (__u32)q->server_id_len + q->nonce_len;
}

struct fp_quic_server_key {
	__u32 vip_index;
	__u8 len;				  /* server_id_len of the VIP's config */
	__u8 server_id[FP_QUIC_LB_SERVER_ID_MAX]; /* zero past len */
};
FP_STATIC_ASSERT(sizeof(struct fp_quic_server_key) == 20, "quic_servers key");

struct fp_quic_server {
	__u16 backend; /* backend id within the VIP */
	__u16 pad;
};
FP_STATIC_ASSERT(sizeof(struct fp_quic_server) == 4, "quic_servers value");

/* Input and output of the SEC("syscall") program fp_quic_key, run by lib/lb.c. */
struct fp_quic_key_args {
	__u32 vip_index;
	__u32 key_len; /* 16: create the VIP's context; 0: release it */
	__u8 key[16];
	char algo[32]; /* crypto API name, "ecb(aes-generic)" ... */
	__s32 err;     /* out: 0 or a negative errno */
	__u32 pad;
};
FP_STATIC_ASSERT(sizeof(struct fp_quic_key_args) == 64, "syscall program context");

/* `traffic` per-CPU array, index vip_index * FP_BACKEND_SLOTS + id (id 0: the VIP). */
struct fp_traffic {
	__u64 packets;
	__u64 bytes;
};
FP_STATIC_ASSERT(sizeof(struct fp_traffic) == 16, "traffic counters");

/*
 * `ratelimit` per-CPU array, one entry: session entries created (flows promoted) in the
 * current one-second window on this CPU, and the round-robin position of `table` mode.
 */
struct fp_ratelimit {
	__u64 window_start_ns;
	__u32 inserted;
	__u32 round_robin;
};
FP_STATIC_ASSERT(sizeof(struct fp_ratelimit) == 16, "rate limiter");

/*
 * One counter per decision and per drop/pass reason, in the per-CPU `stats` array
 * (a single entry holding all of them: one lookup per packet). Every packet the
 * program sees lands in exactly one of the FP_CNT_* verdict reasons below (the
 * "decision" counters), plus possibly some of the informational ones at the end.
 */
#define FP_COUNTERS(X)                                                                             \
	X(PASS_NOT_IP, "pass_not_ip", "not IPv4/IPv6 (ARP, LLDP ...)")                             \
	X(PASS_NOT_VIP, "pass_not_vip", "not addressed to a VIP")                                  \
	X(PASS_ICMP, "pass_icmp", "ICMP we do not route (echo ...), not to a non-local VIP")       \
	X(PASS_FRAGMENT, "pass_fragment",                                                          \
	  "fragment not routed (no port-0 VIP hashing on addresses), not to a non-local VIP")      \
	X(PASS_TOO_DEEP, "pass_too_deep", "more VLAN tags / IPv6 extension headers than walked")   \
	X(DROP_TRUNCATED, "drop_truncated", "headers run past the end of the frame")               \
	X(DROP_MALFORMED, "drop_malformed", "impossible header fields (IHL, lengths)")             \
	X(DROP_GUE_TO_VIP, "drop_gue_to_vip", "encapsulated packet addressed to a VIP")            \
	X(DROP_NO_BACKEND, "drop_no_backend", "VIP has no backend for this flow")                  \
	X(DROP_NO_SOURCE, "drop_no_source", "no outer source address of the backend's family")     \
	X(DROP_FIB, "drop_fib", "no route to the backend (bpf_fib_lookup)")                        \
	X(DROP_NO_NEIGH, "drop_no_neigh", "next hop's MAC unknown (neighbour not resolved)")       \
	X(DROP_TOO_BIG, "drop_too_big", "encapsulated packet exceeds the egress MTU")              \
	X(DROP_ADJUST, "drop_adjust", "bpf_xdp_adjust_head/tail failed")                           \
	X(ICMP_TOO_BIG, "icmp_too_big",                                                            \
	  "too big for the route: ICMP frag-needed / packet-too-big sent to the client")           \
	X(TX, "tx", "encapsulated, sent back out the ingress device (XDP_TX)")                     \
	X(REDIRECT, "redirect", "encapsulated, redirected to another device")                      \
	X(SESSION_HIT, "session_hit", "backend from the session table")                            \
	X(MISS_SYN, "miss_syn", "TCP SYN, no live session entry (a new flow)")                     \
	X(MISS_NON_SYN, "miss_non_syn", "no session, not a SYN (TCP mid-flow, UDP)")               \
	X(SESSION_INSERT, "session_insert",                                                        \
	  "session entry created: a flow in probation promoted by its second packet")              \
	X(SESSION_RATE_LIMITED, "session_rate_limited", "entry not created: new-flow rate")        \
	X(PROBATION_INSERT, "probation_insert", "first packet of a flow: remembered in probation") \
	X(PROBATION_EVICT, "probation_evict",                                                      \
	  "probation mark of a live flow overwritten (flood, collision)")                          \
	X(SESSION_EXPIRED, "session_expired", "entry found but idle past its timeout")             \
	X(SESSION_EVICT, "session_evict",                                                          \
	  "session table full in the flow's bucket: the least recently seen live entry replaced")  \
	X(SESSION_BACKEND_DOWN, "session_backend_down", "entry names a down backend: re-hashed")   \
	X(HOP_LIST, "hop_list", "two hops attached (bucket moved, full mode)")                     \
	X(HOP_FAMILY, "hop_family", "previous owner of another family: one hop only")              \
	X(ICMP_ROUTED, "icmp_routed", "ICMP frag-needed / packet-too-big routed by inner flow")    \
	X(FRAGMENT_HASHED, "fragment_hashed", "fragment routed by address hash")                   \
	X(FLOW_CACHE_HIT, "flow_cache_hit", "session hit answered by the per-CPU flow cache")      \
	X(ICMP_TOO_BIG_LIMITED, "icmp_too_big_limited",                                            \
	  "too big, no ICMP sent: per-CPU rate limit (counted in drop_too_big too)")               \
	X(DROP_VIP_UNSERVED, "drop_vip_unserved",                                                  \
	  "to a VIP address, not served, VIP not local (would loop back to the router)")           \
	X(DROP_V4_MAPPED, "drop_v4_mapped", "IPv6 packet from or to an IPv4-mapped address")       \
	X(DROP_TTL_ZERO, "drop_ttl_zero", "IPv4 TTL or IPv6 hop limit 0 (no router forwards it)")  \
	X(CSUM_COMPLETED, "csum_completed",                                                        \
	  "TCP/UDP checksum left to TX offload by a same-host client, completed")                  \
	X(QUIC_LB_HIT, "quic_lb_hit",                                                              \
	  "QUIC-LB: the DCID names a live backend of the VIP: sent there")                         \
	X(QUIC_LB_NO_CID, "quic_lb_no_cid",                                                        \
	  "QUIC-LB: no server CID (not QUIC, truncated, DCID shorter than the VIP's CIDs)")        \
	X(QUIC_LB_CONFIG, "quic_lb_config",                                                        \
	  "QUIC-LB: DCID config bits are not the VIP's config id (0b111: unroutable)")             \
	X(QUIC_LB_UNKNOWN_SERVER, "quic_lb_unknown_server",                                        \
	  "QUIC-LB: decoded server ID names no backend of the VIP (random or forged CID)")         \
	X(QUIC_LB_DEAD_BACKEND, "quic_lb_dead_backend",                                            \
	  "QUIC-LB: server ID names a down or removed backend: normal path")                       \
	X(QUIC_LB_DECRYPT_ERROR, "quic_lb_decrypt_error",                                          \
	  "QUIC-LB: no AES context for the VIP's key, or bpf_crypto_decrypt failed")               \
	X(TICKET_HIT, "ticket_hit",                                                                \
	  "TCP ticket: the TSecr names a live backend of the VIP: sent there")                     \
	X(TICKET_INVALID, "ticket_invalid",                                                        \
	  "TCP ticket: the TSecr names no live backend of the VIP (forged, stale): normal path")   \
	X(TICKET_NO_TIMESTAMP, "ticket_no_timestamp",                                              \
	  "TCP ticket VIP: segment without a timestamp option (or a malformed one): normal path")  \
	X(POP_OUT, "pop_out",                                                                      \
	  "cross-site: a ticket names another site's backend: sent to that site's LB node")        \
	X(POP_IN, "pop_in",                                                                        \
	  "cross-site: received from another site's LB node, sent to this site's backend")         \
	X(POP_DROP_SOURCE, "pop_drop_source",                                                      \
	  "cross-site packet not from another site's LB address (or not to this site's)")          \
	X(POP_DROP_LOOP, "pop_drop_loop",                                                          \
	  "cross-site packet whose ticket names another site's backend: never sent on again")      \
	X(POP_DROP_INVALID, "pop_drop_invalid",                                                    \
	  "cross-site packet malformed, not to a VIP, or no ticket naming a live backend here")    \
	X(PASS_NOT_OUR_MAC, "pass_not_our_mac",                                                    \
	  "unicast frame to another MAC (flooded by a switch): passed unread, the stack drops it") \
	X(DROP_GROUP_MAC, "drop_group_mac",                                                        \
	  "to a VIP in a broadcast/multicast frame (every LB node got it; RFC 1122 3.3.6)")

enum fp_counter {
#define FP_COUNTER_ENUM(name, str, help) FP_CNT_##name,
	FP_COUNTERS(FP_COUNTER_ENUM)
#undef FP_COUNTER_ENUM
		FP_CNT__MAX
};

/* A power of two above FP_CNT__MAX: the program indexes with `counter & (slots - 1)`,
 * a bound the verifier can always follow. */
#define FP_STATS_SLOTS 64
FP_STATIC_ASSERT(FP_CNT__MAX <= FP_STATS_SLOTS, "grow FP_STATS_SLOTS");

struct fp_stats {
	__u64 count[FP_STATS_SLOTS];
};

#ifndef __bpf__
/* Short names ("session_hit") and one-line explanations, indexed by enum fp_counter. */
static const char *const fp_counter_names[FP_CNT__MAX] = {
#define FP_COUNTER_NAME(name, str, help) [FP_CNT_##name] = str,
	FP_COUNTERS(FP_COUNTER_NAME)
#undef FP_COUNTER_NAME
};
static const char *const fp_counter_help[FP_CNT__MAX] = {
#define FP_COUNTER_HELP(name, str, help) [FP_CNT_##name] = help,
	FP_COUNTERS(FP_COUNTER_HELP)
#undef FP_COUNTER_HELP
};
#endif

/*
 * `info` array, one entry, written by the loader: the settings fixed at load, so
 * another process (flowpin lb reload/stats) can check a config against what runs.
 * The BPF program reads only cache_epoch (it has the settings as const volatile
 * globals).
 */
#define FP_INFO_MAGIC 0x666c703e /* "flp>": bump when any layout in this file changes */
struct fp_info {
	__u32 magic;
	__u32 table_size;
	__u32 max_vips;
	__u32 generation; /* last generation applied */
	struct {
		__u64 k0, k1;
	} hash_key;
	__u16 encap_port; /* host order */
	__u16 pad;
	__u32 session_entries;
	__u32 timeout_tcp_established; /* seconds */
	__u32 timeout_tcp_transitory;
	__u32 timeout_udp;
	__u32 new_flow_rate; /* per CPU per second; 0 = unlimited */
	__u8 source_v4[4];
	__u8 source_v6[16];
	/* Bumped (never to 0) after every apply and session clear: flow cache entries
	 * filled under another epoch are ignored (struct fp_flow_cache_entry). */
	__u32 cache_epoch;
	__u32 probation_slots; /* slots of the `probation` array (a power of two) */
	/* Config applies to this node since the maps were created, by any process (the
	 * daemon, `lb reload`), and those refused or failed: counted under the apply lock
	 * (lib/lb.c), kept across take-overs. Metrics and `lb stats` read them. */
	__u64 applies;
	__u64 apply_errors;
	/* The TCP ticket key (flowpin/ticket.h fp_ticket_key_derive() of hash_key), as the
	 * program has it (const volatile ticket_k0/k1). */
	struct {
		__u64 k0, k1;
	} ticket_key;
	/* The node's site (`lb up --pop`, docs/config.md "pops"), NUL-terminated; "" for a
	 * node of a config without sites. `lb reload` applies every config as this site's. */
	char pop[FP_POP_NAME_LEN];
};
FP_STATIC_ASSERT(sizeof(struct fp_info) == 152, "info");

#endif
