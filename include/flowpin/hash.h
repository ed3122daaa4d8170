/* SPDX-License-Identifier: MIT */
/*
 * The keyed flow hash, written once for BPF and userspace.
 *
 * SipHash-1-3 (Aumasson & Bernstein; the 1-3 variant is what Rust's HashMap and
 * CPython use) over the 40-byte flow key: a keyed PRF, so nobody who does not know
 * the fleet-wide key can aim flows at one backend or one bucket, and cheap in BPF
 * because every step is a 64-bit add/xor/rotate on registers (five message words,
 * eight SipRounds in all, no tables, no loops the verifier has to unroll).
 * jhash or a CRC would be faster still but are not keyed PRFs: with a known function
 * an attacker can grind source ports until every flow lands on one backend.
 *
 * The message words are read in host byte order. Every LB node of a fleet must
 * therefore share byte order (all x86-64/arm64 little-endian today); the published
 * test vectors in tests/unit/test_hash.c pin the result.
 */
#ifndef FLOWPIN_HASH_H
#define FLOWPIN_HASH_H

#include <flowpin/compiler.h>
#include <flowpin/flow.h>

struct fp_hash_key {
	__u64 k0;
	__u64 k1;
};

FP_INLINE __u64 fp_rotl64(__u64 x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define FP_SIPROUND(v0, v1, v2, v3)     \
	do {                            \
		v0 += v1;               \
		v1 = fp_rotl64(v1, 13); \
		v1 ^= v0;               \
		v0 = fp_rotl64(v0, 32); \
		v2 += v3;               \
		v3 = fp_rotl64(v3, 16); \
		v3 ^= v2;               \
		v0 += v3;               \
		v3 = fp_rotl64(v3, 21); \
		v3 ^= v0;               \
		v2 += v1;               \
		v1 = fp_rotl64(v1, 17); \
		v1 ^= v2;               \
		v2 = fp_rotl64(v2, 32); \
	} while (0)

/* One compression round per message word (c = 1). */
#define FP_SIP_ABSORB(v0, v1, v2, v3, m)     \
	do {                                 \
		v3 ^= (m);                   \
		FP_SIPROUND(v0, v1, v2, v3); \
		v0 ^= (m);                   \
	} while (0)

/*
 * fp_flow_hash - SipHash-1-3 of a flow key under the fleet key.
 * Equals fp_siphash(key, flow, 40, 1, 3) from lib/hash.c (tested).
 */
FP_INLINE __u64 fp_flow_hash(const struct fp_hash_key *key, const struct fp_flow_key *flow)
{
	const __u64 *m = (const __u64 *)flow;
	__u64 v0 = key->k0 ^ 0x736f6d6570736575ULL;
	__u64 v1 = key->k1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = key->k0 ^ 0x6c7967656e657261ULL;
	__u64 v3 = key->k1 ^ 0x7465646279746573ULL;
	const __u64 last = (__u64)sizeof(*flow) << 56;

	FP_SIP_ABSORB(v0, v1, v2, v3, m[0]);
	FP_SIP_ABSORB(v0, v1, v2, v3, m[1]);
	FP_SIP_ABSORB(v0, v1, v2, v3, m[2]);
	FP_SIP_ABSORB(v0, v1, v2, v3, m[3]);
	FP_SIP_ABSORB(v0, v1, v2, v3, m[4]);
	FP_SIP_ABSORB(v0, v1, v2, v3, last);
	v2 ^= 0xff;
	FP_SIPROUND(v0, v1, v2, v3);
	FP_SIPROUND(v0, v1, v2, v3);
	FP_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* Maglev bucket of a flow hash for a table of size m (m prime, < 2^32). */
FP_INLINE __u32 fp_hash_bucket(__u64 hash, __u32 m)
{
	return (__u32)(hash % m);
}

/*
 * Outer UDP source port for the encapsulation: the high bit set (ephemeral range) and
 * bits 48..62 of the flow hash, the same for every packet of a flow, so the underlay's
 * ECMP keeps the flow on one path (ECMP flow locking). The bucket (hash mod m) depends
 * on all 64 bits, these included; flows of one bucket still spread over the paths.
 * Host byte order.
 */
FP_INLINE __u16 fp_hash_sport(__u64 hash)
{
	return (__u16)(0x8000 | ((hash >> 48) & 0x7fff));
}

#endif
