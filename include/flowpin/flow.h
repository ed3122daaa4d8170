/* SPDX-License-Identifier: MIT */
/*
 * Family-neutral flow key, shared by the BPF programs and userspace.
 *
 * IPv4 addresses are stored as IPv4-mapped IPv6 addresses (::ffff:a.b.c.d), so one
 * key layout, one hash and one session table serve both families. Addresses and
 * ports are in network byte order, exactly as on the wire.
 */
#ifndef FLOWPIN_FLOW_H
#define FLOWPIN_FLOW_H

#include <flowpin/compiler.h>

/* Third 32-bit word of an IPv4-mapped address (bytes 00 00 ff ff) read in host order. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FP_V4_MAPPED_WORD 0xffff0000U
#else
#define FP_V4_MAPPED_WORD 0x0000ffffU
#endif

struct fp_flow_key {
	__u8 src[16]; /* client address (IPv4-mapped for IPv4) */
	__u8 dst[16]; /* VIP address (IPv4-mapped for IPv4) */
	__be16 sport; /* client port; 0 when the VIP hashes on addresses only */
	__be16 dport; /* VIP port; 0 when the VIP hashes on addresses only */
	__u8 proto;   /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad[3];  /* always zero: part of the hashed bytes */
};
FP_STATIC_ASSERT(sizeof(struct fp_flow_key) == 40, "flow key is five 64-bit words");

/*
 * Writes an IPv4 address (network order) as an IPv4-mapped IPv6 address.
 * @out may sit at any alignment (struct fp_addr is a byte array): userspace builds go
 * through memcpy, which compiles to the same word moves without the undefined
 * behaviour of a misaligned __u32 store (UBSan). BPF builds keep the word stores: the
 * programs pass 4-byte-aligned keys and the BPF target has no alignment rule to break.
 */
FP_INLINE void fp_addr_from_v4(__u8 out[16], __be32 v4)
{
	__u32 w[4] = { 0, 0, FP_V4_MAPPED_WORD, v4 };

#ifdef __bpf__
	__u32 *o = (__u32 *)out;

	o[0] = w[0];
	o[1] = w[1];
	o[2] = w[2];
	o[3] = w[3];
#else
	__builtin_memcpy(out, w, sizeof(w));
#endif
}

FP_INLINE int fp_addr_is_v4(const __u8 a[16])
{
#ifdef __bpf__
	const __u32 *w = (const __u32 *)a;
#else
	__u32 w[3];

	__builtin_memcpy(w, a, sizeof(w));
#endif
	return w[0] == 0 && w[1] == 0 && w[2] == FP_V4_MAPPED_WORD;
}

#endif
