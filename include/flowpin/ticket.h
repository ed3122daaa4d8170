/* SPDX-License-Identifier: MIT */
/*
 * TCP connection tickets (pinning method 3): the backend's identity in the TCP
 * timestamps, written once for both BPF programs, the library, replay and the tests.
 *
 * The backend's tc egress program rewrites the TSval of every segment it sends from a
 * ticket VIP (K = the VIP's tickets.bits, 1..12):
 *
 *     TSval' = ((TSval + off(F)) << K) | ((SID ^ h(F)) & (2^K - 1))
 *
 * F is the flow in client->VIP orientation (struct fp_flow_key, always the full
 * 5-tuple), off(F) and h(F) the low and high 32 bits of SipHash-1-3 of F under the
 * ticket key (a key derived from the fleet's hash_key, so the ticket hash is not the
 * bucket hash). The client echoes TSval' in the TSecr of its segments; an LB node reads
 * SID back with fp_ticket_sid() and the backend's tc ingress program puts the original
 * TSval back with fp_ticket_restore() before the stack sees the segment: the low 32-K
 * bits come from the ticket, the top K bits (shifted out) from the backend's own TCP
 * clock. Restoration is exact while the echoed TSval is within 2^(31-K) ms of that clock
 * (K = 8: 8388.6 s, 2.33 h), which is also how long the client's PAWS check tolerates
 * silence from the server (docs/backend.md "TCP connection tickets").
 *
 * Everything here is pure arithmetic: no maps, no helpers, no loops.
 */
#ifndef FLOWPIN_TICKET_H
#define FLOWPIN_TICKET_H

#include <flowpin/compiler.h>
#include <flowpin/flow.h>
#include <flowpin/hash.h>

#define FP_TICKET_MIN_BITS     1
#define FP_TICKET_MAX_BITS     12
#define FP_TICKET_DEFAULT_BITS 8

/*
 * fp_ticket_key_derive - the ticket key from the fleet's hash_key (userspace: loaders
 * derive it and hand the result to their program; the programs never derive).
 * Domain separation: each word is SipHash-1-3, under the fleet key, of a fixed 40-byte
 * label that no flow key can equal (a flow key's pad bytes are zero, the labels' are
 * not), so the ticket hash of a flow says nothing about its bucket hash and back.
 */
FP_INLINE void fp_ticket_key_derive(const struct fp_hash_key *fleet, struct fp_hash_key *ticket)
{
	struct fp_flow_key label;
	/*
	 * The label's bytes, "issue 11" included, are part of the published test vectors
	 * (tests/common/ticket_vectors.h, tests/lab/ticket_sid.py) and of every fleet's
	 * tickets: changing one byte changes every ticket key. Never edit it.
	 */
	const char text[] = "flowpin TCP ticket key, issue 11, word ";

	FP_STATIC_ASSERT(sizeof(text) == sizeof(label), "the label fills a flow key");
	__builtin_memcpy(&label, text, sizeof(label));
	label.pad[2] = '0';
	ticket->k0 = fp_flow_hash(fleet, &label);
	label.pad[2] = '1';
	ticket->k1 = fp_flow_hash(fleet, &label);
}

/*
 * fp_ticket_flow_hash - the flow's ticket hash: SipHash-1-3 of @f (client->VIP
 * orientation, ports included, pad zero) under the derived @ticket_key.
 * off(F) is its low 32 bits, h(F) its high 32 bits.
 */
FP_INLINE __u64 fp_ticket_flow_hash(const struct fp_hash_key *ticket_key,
				    const struct fp_flow_key *f)
{
	return fp_flow_hash(ticket_key, f);
}

/* The low @bits bits set; @bits is 1..FP_TICKET_MAX_BITS in every function below. */
FP_INLINE __u32 fp_ticket_mask(__u8 bits)
{
	return (1U << bits) - 1;
}

/*
 * fp_ticket_encode - the TSval a backend sends: the original @tsval, moved by the
 * flow's offset and shifted up by @bits, the server id @sid (< 2^@bits) masked by
 * h(F) in the low @bits bits.
 */
FP_INLINE __u32 fp_ticket_encode(__u32 tsval, __u64 fh, __u16 sid, __u8 bits)
{
	return ((tsval + (__u32)fh) << bits) |
	       (((__u32)sid ^ (__u32)(fh >> 32)) & fp_ticket_mask(bits));
}

/*
 * fp_ticket_sid - the server id a client's @tsecr names for the flow of @fh (LB side).
 * Any 32-bit value names some id: a forged or stale TSecr names an id at random, which
 * the LB then checks against the VIP's live backends.
 */
FP_INLINE __u16 fp_ticket_sid(__u32 tsecr, __u64 fh, __u8 bits)
{
	return (__u16)((tsecr ^ (__u32)(fh >> 32)) & fp_ticket_mask(bits));
}

/*
 * fp_ticket_restore - the TSval the backend's stack sent, from the echoed @tsecr (the
 * backend's ingress). The low 32-@bits bits of (TSval + off) are in the ticket; the top
 * @bits bits are taken from @now_ms, the backend's TCP clock (tcp_timestamps=2:
 * (u32)(CLOCK_MONOTONIC ns / 10^6), bpf_ktime_get_ns() / 1000000 in BPF): the result is
 * the value congruent to the ticket's bits that is nearest to @now_ms, i.e. within
 * [now_ms - 2^(31-@bits), now_ms + 2^(31-@bits)) modulo 2^32 (clock wrap included).
 * An echo older than that comes back off by a multiple of 2^(32-@bits) ms: no fault,
 * a wrong TSecr for the stack (by then the client's PAWS check drops the server's
 * segments anyway).
 */
FP_INLINE __u32 fp_ticket_restore(__u32 tsecr, __u64 fh, __u8 bits, __u32 now_ms)
{
	__u32 mask = 0xffffffffU >> bits; /* 2^(32-bits) - 1: what the shift kept */
	__u32 low = ((tsecr >> bits) - (__u32)fh) & mask;
	__u32 ahead = (low - now_ms) & mask; /* from now_ms up to the congruent value */

	if (ahead > (mask >> 1)) /* nearer below now_ms: one period back */
		return now_ms + ahead - mask - 1;
	return now_ms + ahead;
}

/* Half the restoration window in ms (2^(31-@bits)): how far an echo may lag the clock. */
FP_INLINE __u32 fp_ticket_window_ms(__u8 bits)
{
	return 0x80000000U >> bits;
}

#endif
