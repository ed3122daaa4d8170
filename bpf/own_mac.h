/* SPDX-License-Identifier: MIT */
/*
 * The own-MAC rule of the LB node (docs/design.md "Packet path on an LB node", step 0;
 * docs/security.md "Unicast flooding"): a frame is acted on only when it was sent to
 * this node. A switch floods a unicast frame whose destination it has not learnt to
 * every port of the segment, so every LB node there sees it; each one forwarding it
 * would send a VIP packet to a backend twice, count another site's cross-site hop as
 * spoofed (pop_drop_source) and could take a ticket or second-chance decision twice.
 *
 *  - Unicast to another MAC: XDP_PASS before anything past the Ethernet header is read
 *    (pass_not_our_mac). The stack drops it as PACKET_OTHERHOST, as it would without
 *    flowpin (eth_type_trans()).
 *  - Group addresses (the I/G bit: broadcast, multicast) keep the path they had (ARP,
 *    neighbour discovery, routing protocols are passed as before), except that nothing
 *    in them is ever acted on: a cross-site message is not taken (step 0b skipped) and a
 *    packet addressed to a VIP address is dropped (drop_group_mac). A router never sends
 *    a unicast IP packet to a group MAC; RFC 1122 3.3.6 says to discard one, the kernel
 *    never forwards one (ip_forward(): PACKET_HOST only), and every LB node on the
 *    segment receives it, so acting would forward it once per node.
 *
 * "This node's MAC" is the receiving device's current address, read from the kernel's
 * struct net_device on every packet (bpf_cast_to_kern_ctx(), Linux 6.3: the xdp_buff
 * behind the context, its rx queue's device): nothing to record at load and keep in
 * step, so `ip link set dev X address Y` after attach takes effect with the next frame,
 * whether or not a daemon runs. The 6 bytes come from dev_addr_shadow, the copy the
 * kernel keeps equal to dev_addr in dev_addr_mod() (the only sanctioned writer), read
 * as plain loads; a kernel without that field reads dev_addr through
 * bpf_probe_read_kernel() (CO-RE decides at load). Only the device's own address
 * counts: frames to a MAC in its unicast filter list (a macvlan or VLAN device given
 * another address on top of it) are passed to that device, as the stack would.
 */
#ifndef FLOWPIN_BPF_OWN_MAC_H
#define FLOWPIN_BPF_OWN_MAC_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* The kernel's types, only the members read (CO-RE: libbpf relocates the offsets to the
 * running kernel's BTF; the ___fp suffix keeps them apart from any other definition). */
struct net_device___fp {
	const unsigned char *dev_addr;
	unsigned char dev_addr_shadow[32];
} __attribute__((preserve_access_index));

struct xdp_rxq_info___fp {
	struct net_device___fp *dev;
} __attribute__((preserve_access_index));

struct xdp_buff___fp {
	struct xdp_rxq_info___fp *rxq;
} __attribute__((preserve_access_index));

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

#define FP_MAC_OURS  0 /* unicast to this device (or a frame too short to tell: parse it) */
#define FP_MAC_OTHER 1 /* unicast to another MAC: pass */
#define FP_MAC_GROUP 2 /* broadcast or multicast: act on nothing */

/* What the destination MAC of the frame in @ctx is to the receiving device. */
static __always_inline int fp_frame_mac(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct xdp_buff___fp *xdp = bpf_cast_to_kern_ctx(ctx);
	struct net_device___fp *dev;
	struct ethhdr *eth = data;
	__u32 dst_hi, own_hi = 0;
	__u16 dst_lo, own_lo = 0;

	if ((void *)(eth + 1) > end)
		return FP_MAC_OURS; /* the parse drops it (drop_truncated), as before */
	if (eth->h_dest[0] & 1)
		return FP_MAC_GROUP;
	dev = xdp->rxq->dev;
	if (bpf_core_field_exists(dev->dev_addr_shadow)) {
		own_hi = *(__u32 *)&dev->dev_addr_shadow[0];
		own_lo = *(__u16 *)&dev->dev_addr_shadow[4];
	} else {
		__u8 own[6];

		if (bpf_probe_read_kernel(own, sizeof(own), dev->dev_addr))
			return FP_MAC_OTHER; /* cannot happen; never act on an unknown frame */
		__builtin_memcpy(&own_hi, own, 4);
		__builtin_memcpy(&own_lo, own + 4, 2);
	}
	__builtin_memcpy(&dst_hi, eth->h_dest, 4);
	__builtin_memcpy(&dst_lo, eth->h_dest + 4, 2);
	return (dst_hi ^ own_hi) | (dst_lo ^ own_lo) ? FP_MAC_OTHER : FP_MAC_OURS;
}

#endif
