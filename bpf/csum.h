/* SPDX-License-Identifier: MIT */
/*
 * Internet checksum (RFC 1071) helpers for the LB program.
 *
 * Every sum here is kept in memory byte order: 16-bit (or 32-bit) words are loaded as
 * they lie in the packet and added with end-around carry, and a folded result is stored
 * back as it is. One's complement addition commutes with byte swapping, so no word is
 * ever converted; constants that are not packet bytes (lengths, protocol numbers) are
 * added in network order (bpf_htons/bpf_htonl).
 *
 * fp_csum_frame() sums a stretch of the frame through a per-CPU bounce buffer: bytes
 * are copied with bpf_xdp_load_bytes() and summed with bpf_csum_diff() in chunks of
 * FP_CSUM_CHUNK (the helper's limit), which keeps the verifier's view to constant-sized
 * accesses whatever the frame's length.
 *
 * Include once (it defines a map), after <bpf/bpf_helpers.h>.
 */
#ifndef FLOWPIN_BPF_CSUM_H
#define FLOWPIN_BPF_CSUM_H

#include <linux/bpf.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define FP_CSUM_CHUNK 512 /* bpf_csum_diff() sums at most 512 bytes per call */
/* The longest stretch fp_csum_frame() sums: a 9216-byte jumbo frame's L4 segment. */
#define FP_CSUM_MAX_CHUNKS 18
#define FP_CSUM_MAX	   (FP_CSUM_MAX_CHUNKS * FP_CSUM_CHUNK)

/* A chunk and its zero padding; twice the size so that a length masked with
 * FP_CSUM_MASK (what the verifier can bound) always fits. */
#define FP_CSUM_MASK (2 * FP_CSUM_CHUNK - 1)
struct fp_csum_scratch {
	__u8 b[2 * FP_CSUM_CHUNK + 8];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct fp_csum_scratch);
	__uint(max_entries, 1);
} csum_scratch SEC(".maps");

/* Folds a 64-bit sum of 16/32-bit words to 16 bits (not complemented). */
static __always_inline __u16 fp_csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* Sum of the 32-bit words of a 16-byte address. */
static __always_inline __u64 fp_csum_addr6(const __u8 *a)
{
	const __u32 *w = (const __u32 *)a;

	return (__u64)w[0] + w[1] + w[2] + w[3];
}

/*
 * The pseudo-header sum of TCP, UDP (RFC 768/793, RFC 8200 8.1) and ICMPv6 for @src and
 * @dst (16 bytes each, IPv4-mapped when !@v6), protocol @proto, @l4_len bytes of L4.
 */
static __always_inline __u64 fp_csum_pseudo(const __u8 *src, const __u8 *dst, int v6, __u8 proto,
					    __u32 l4_len)
{
	if (v6)
		return fp_csum_addr6(src) + fp_csum_addr6(dst) + bpf_htonl(l4_len) +
		       bpf_htonl(proto);
	return (__u64) * (const __u32 *)(src + 12) + *(const __u32 *)(dst + 12) +
	       bpf_htons((__u16)l4_len) + bpf_htons(proto);
}

/* IPv4 header checksum of a 20-byte header whose check field is zero. */
static __always_inline __u16 fp_csum_ipv4_header(const struct iphdr *ip)
{
	const __u32 *w = (const __u32 *)ip;
	__u64 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)sizeof(*ip) / 4; i++)
		sum += w[i];
	return (__u16)~fp_csum_fold(sum);
}

/*
 * fp_csum_frame - the sum (64-bit, unfolded) of bytes [@off, @off + @len) of the frame,
 * @len at most FP_CSUM_MAX. A stretch of odd length is summed as if padded with one
 * zero byte, as RFC 1071 says. Returns the sum, or -1 when the stretch is not within
 * the frame (or @len is too large).
 *
 * A global function: the verifier checks its loop once, not once per path of the
 * caller (inlined at two call sites it exceeded the 1M-instruction budget).
 */
__attribute__((noinline)) __s64 fp_csum_frame(struct xdp_md *ctx, __u32 off, __u32 len)
{
	struct fp_csum_scratch *s;
	__u32 zero = 0, done = 0;
	__s64 acc = 0;

	if (!ctx || len > FP_CSUM_MAX)
		return -1;
	s = bpf_map_lookup_elem(&csum_scratch, &zero);
	if (!s)
		return -1;
	for (int i = 0; i < FP_CSUM_MAX_CHUNKS; i++) {
		__u64 n, padded;
		__s64 part;

		if (done >= len)
			break;
		n = len - done;
		if (n > FP_CSUM_CHUNK)
			n = FP_CSUM_CHUNK;
		/* A no-op the compiler must keep: the verifier's bound on n. */
		asm volatile("%[n] &= %[m]" : [n] "+r"(n) : [m] "i"(FP_CSUM_MASK));
		if (!n)
			return -1;
		if (bpf_xdp_load_bytes(ctx, off + done, s->b, n))
			return -1;
		/* Zero padding up to the next 4-byte multiple (bpf_csum_diff's unit). */
		s->b[n] = 0;
		s->b[n + 1] = 0;
		s->b[n + 2] = 0;
		padded = (n + 3) & ~3ULL;
		asm volatile("%[p] &= %[m]" : [p] "+r"(padded) : [m] "i"(FP_CSUM_MASK));
		part = bpf_csum_diff(NULL, 0, (__be32 *)s->b, padded, 0);
		if (part < 0)
			return -1;
		acc += (__u32)part;
		done += n;
	}
	if (done != len)
		return -1;
	return acc;
}

/*
 * fp_csum_complete_partial - finishes a TCP/UDP checksum the sender left to "hardware".
 *
 * A client on this host (a veth, a container) with TX checksum offload on hands over
 * CHECKSUM_PARTIAL packets: the checksum field holds only the folded pseudo-header sum
 * (not complemented) and the NIC is expected to finish it. XDP sees bytes, not the
 * skb's state, and the backend would drop the segment (TcpInCsumErrors). Completing it
 * is what the NIC would do: the complement of the sum over the L4 segment as it is,
 * field included (the field's pseudo-header sum stands in for the pseudo header).
 *
 * Recognised by the field alone (one compare per packet); a finished checksum that
 * happens to equal the folded pseudo-header sum (1 in 65536 packets) is verified over
 * the segment and left alone. The L4 segment is [@l4_off, @l4_off + @l4_len) of the
 * frame, @proto IPPROTO_TCP or IPPROTO_UDP, @pseudo its fp_csum_pseudo().
 * Returns 1 when the field was completed, 0 when it was left as it was, -1 when the
 * segment could not be read (nothing written).
 */
static __always_inline int fp_csum_complete_partial(struct xdp_md *ctx, __u32 l4_off, __u32 l4_len,
						    __u8 proto, __u64 pseudo)
{
	__u32 check_off = l4_off + (proto == IPPROTO_TCP ? 16 : 6);
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	__u16 *field, want;
	__s64 sum;

	if (check_off > 0xfff) /* beyond what any header walk reaches; a verifier bound */
		return 0;
	field = data + check_off;
	if ((void *)(field + 1) > data_end)
		return 0;
	if (*field != fp_csum_fold(pseudo))
		return 0; /* finished (or UDP without checksum): the normal case */
	sum = fp_csum_frame(ctx, l4_off, l4_len);
	if (sum < 0)
		return -1;
	if (fp_csum_fold((__u64)sum + pseudo) == 0xffff)
		return 0; /* a finished checksum after all */
	want = (__u16)~fp_csum_fold(sum);
	if (proto == IPPROTO_UDP && !want)
		want = 0xffff; /* 0 means "no checksum" in UDP */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	field = data + (check_off & 0xfff);
	if ((void *)(field + 1) > data_end)
		return -1;
	*field = want;
	return 1;
}

#endif
