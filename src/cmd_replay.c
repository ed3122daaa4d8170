// SPDX-License-Identifier: MIT
/*
 * flowpin replay: the operators' dry run of a config. Every packet of a capture goes
 * through the real XDP program (bpf/lb.bpf.c, loaded by lib/lb.c exactly as `flowpin lb
 * up` loads it, but attached nowhere) with BPF_PROG_TEST_RUN; forwarded frames go to an
 * output capture and every packet gets one line saying what the program decided and why.
 * With --backend, the backend agent's tc program (bpf/backend.bpf.c, loaded by
 * lib/backend.c as `flowpin backend up` loads it) instead, on a capture taken on a
 * backend's fabric device, with local TCP sockets made on request (--socket).
 *
 * Frame sizes: BPF_PROG_TEST_RUN puts at most about 3.5 KB of a frame into the one
 * buffer a program reads (the rest of an XDP frame into fragments, which flowpin's
 * programs do not read; an skb test run refuses larger data). Replay measures the XDP
 * limit of the running kernel (a five-instruction program that returns data_end - data)
 * and refuses a capture with a larger frame, naming it, rather than report a drop that a
 * node receiving the whole frame would not make.
 *
 * Next hops: the program asks bpf_fib_lookup() for the next-hop MAC. Replay runs in a
 * private network namespace (flowpin/fibns.h) whose default routes lead to one gateway
 * whose MAC is --nexthop-mac, so every backend resolves to it, on any machine, without
 * touching the host's tables and without a test mode in the data plane.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
/* libpcap's classic-BPF struct bpf_insn clashes with the kernel's eBPF one. */
#define bpf_insn pcap_bpf_insn
#include <pcap/pcap.h>
#undef bpf_insn
#include <bpf/bpf.h>
#include <flowpin/backend.h>
#include <flowpin/config.h>
#include <flowpin/fibns.h>
#include <flowpin/lb.h>
#include <flowpin/log.h>
#include <flowpin/ticket.h>
#include <flowpin/wire.h>
#include "cli.h"
#include "commands.h"

#define REPLAY_MAX_FRAME   9216 /* jumbo frame: the read limit, the program's is smaller */
#define REPLAY_MAX_SOCKETS 64

struct replay_packet {
	struct pcap_pkthdr hdr;
	__u8 *data;
};

struct capture {
	struct replay_packet *packets;
	size_t n;
};

/* What a frame carries, as far as replay's lines need it. */
struct frame_info {
	int is_ip;
	struct fp_addr src, dst;
	__u16 sport, dport; /* host order */
	__u8 proto;
	int tcp_syn;
	int fragment;  /* an IPv4 fragment, first or not (IPv6 ones are not TCP here) */
	size_t ip_end; /* end of the IP packet by its length field, at most the frame's */
};

/* The outer headers and hop list of a frame the program encapsulated. */
struct encap_info {
	struct fp_addr hops[FP_MAX_HOPS];
	__u8 hop_count;
	__u8 hop_index;
	__u32 generation;
	struct frame_info inner;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: flowpin replay --config FILE --in IN.pcap --out OUT.pcap\n"
		"                      [--lb-state fresh|keep] [--nexthop-mac MAC] [--source "
		"ADDR]\n"
		"                      [--mac MAC]\n"
		"       flowpin replay --backend --config FILE --in IN.pcap [--out OUT.pcap]\n"
		"                      --self ADDR [--self ADDR]... [--socket "
		"VIP:PORT-CLIENT:PORT]...\n"
		"                      [--sockets FILE] [--mac MAC] [--nexthop-mac MAC]\n"
		"\n"
		"Runs the real XDP program on every packet of IN.pcap (Ethernet captures) with\n"
		"BPF_PROG_TEST_RUN and writes the frames it forwards (XDP_TX/REDIRECT) to\n"
		"OUT.pcap. Prints one line per packet:\n"
		"  N VERDICT vip=ADDR:PORT/PROTO backend=ID(ADDR) hops=ADDR[,ADDR] gen=G "
		"[quic_sid=HEX|-] [TICKET] reason=COUNTER[,COUNTER]\n"
		"(quic_sid: VIPs with quic_lb, the server ID the destination CID names;\n"
		"TICKET: TCP VIPs with tickets, ticket=syn, ticket=no_timestamp or\n"
		" tsecr=HEX ticket=ID(active|draining|down|unknown) step3=take|no: the server id\n"
		" the TSecr names and whether a session miss goes there)\n"
		"\n"
		"  --lb-state fresh  every packet meets an empty session table and probation,\n"
		"                    as on an LB node that never saw the flow (default)\n"
		"  --lb-state keep   the session table and probation persist across the capture\n"
		"  --nexthop-mac MAC destination MAC of forwarded frames (default "
		"02:66:70:00:00:fe);\n"
		"                    replay resolves every next hop to it in a private network\n"
		"                    namespace, so the host's routes play no part\n"
		"  --source ADDR     outer source address of its family (give one of each family\n"
		"                    at most; default 192.0.2.1 and 2001:db8::1)\n"
		"\n"
		"--backend runs the backend agent's tc program instead, on a capture taken on a\n"
		"backend's fabric device, and writes the frames it delivers (decapsulated) or\n"
		"forwards (readdressed) to OUT.pcap if given. One line per packet:\n"
		"  N DELIVER|FORWARD|REFLECT|DROP|PASS vip=ADDR:PORT/PROTO client=ADDR:PORT "
		"to=ID(ADDR) "
		"reason=COUNTER\n"
		"  --self ADDR       an address of the backend (outer destinations it accepts, "
		"and\n"
		"                    never a next hop); repeat for each, at least one\n"
		"  --socket VIP:PORT-CLIENT:PORT\n"
		"                    pretend an established TCP connection (a real one is made in\n"
		"                    replay's private namespace); IPv6 as [ADDR]:PORT; repeatable\n"
		"  --sockets FILE    the same, one per line ('#' comments)\n"
		"  --mac MAC         the node's MAC (LB or backend): frames to another MAC are "
		"not\n"
		"                    addressed to it (default: every unicast frame is)\n"
		"\n"
		"Frames larger than the kernel's BPF_PROG_TEST_RUN hands a program whole (about\n"
		"3.5 KB) are refused, naming the frame. Needs root (BPF). Exit status: 0 done,\n"
		"1 error, 2 usage.\n");
}

static void capture_free(struct capture *cap)
{
	if (!cap)
		return;
	for (size_t i = 0; i < cap->n; i++)
		free(cap->packets[i].data);
	free(cap->packets);
	cap->packets = NULL;
	cap->n = 0;
}

/*
 * Reads the whole capture before anything runs, so a bad file is refused before any
 * output exists. Returns 0 or a negative errno after naming the file and packet.
 */
static int capture_read(const char *path, struct capture *cap)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *hdr;
	const u_char *bytes;
	pcap_t *pcap;
	size_t cap_alloc = 0;
	int rc, err = 0;

	pcap = pcap_open_offline(path, errbuf);
	if (!pcap) {
		fp_err("%s: %s\n", path, errbuf);
		return -EINVAL;
	}
	if (pcap_datalink(pcap) != DLT_EN10MB) {
		fp_err("%s: link type %s; replay reads Ethernet captures only\n", path,
		       pcap_datalink_val_to_name(pcap_datalink(pcap)) ?: "unknown");
		err = -EINVAL;
		goto out;
	}
	while ((rc = pcap_next_ex(pcap, &hdr, &bytes)) == 1) {
		size_t number = cap->n + 1;

		if (hdr->caplen < hdr->len) {
			fp_err("%s: packet %zu: only %u of %u bytes captured (snap length); "
			       "replay needs whole packets\n",
			       path, number, hdr->caplen, hdr->len);
			err = -EINVAL;
			goto out;
		}
		if (hdr->caplen > REPLAY_MAX_FRAME || hdr->caplen < ETH_HLEN) {
			/* Larger frames are refused later with the program's own limit. */
			fp_err("%s: packet %zu: %u bytes; replay takes Ethernet frames of %d..%d "
			       "bytes\n",
			       path, number, hdr->caplen, ETH_HLEN, REPLAY_MAX_FRAME);
			err = -EINVAL;
			goto out;
		}
		if (cap->n == cap_alloc) {
			size_t want = cap_alloc ? cap_alloc * 2 : 64;
			void *p = realloc(cap->packets, want * sizeof(*cap->packets));

			if (!p) {
				err = -ENOMEM;
				goto out;
			}
			cap->packets = p;
			cap_alloc = want;
		}
		cap->packets[cap->n].hdr = *hdr;
		cap->packets[cap->n].data = malloc(hdr->caplen);
		if (!cap->packets[cap->n].data) {
			err = -ENOMEM;
			goto out;
		}
		memcpy(cap->packets[cap->n].data, bytes, hdr->caplen);
		cap->n++;
	}
	if (rc == PCAP_ERROR) {
		fp_err("%s: packet %zu: %s\n", path, cap->n + 1, pcap_geterr(pcap));
		err = -EINVAL;
	}
out:
	pcap_close(pcap);
	if (err)
		capture_free(cap);
	return err;
}

/*
 * How many bytes of a @size-byte frame BPF_PROG_TEST_RUN puts into the buffer an XDP
 * program reads (data..data_end); the rest goes into fragments. Measured with a
 * five-instruction program returning data_end - data (test runs return any value).
 * Returns 0 and sets *@linear, or a negative errno after a message.
 */
static int xdp_linear_limit(__u32 size, __u32 *linear)
{
	const struct bpf_insn insns[] = {
		/* r2 = ctx->data_end; r1 = ctx->data; r0 = r2 - r1; exit */
		{ .code = BPF_LDX | BPF_W | BPF_MEM,
		  .dst_reg = BPF_REG_2,
		  .src_reg = BPF_REG_1,
		  .off = offsetof(struct xdp_md, data_end) },
		{ .code = BPF_LDX | BPF_W | BPF_MEM,
		  .dst_reg = BPF_REG_1,
		  .src_reg = BPF_REG_1,
		  .off = offsetof(struct xdp_md, data) },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_0, .src_reg = BPF_REG_2 },
		{ .code = BPF_ALU64 | BPF_SUB | BPF_X, .dst_reg = BPF_REG_0, .src_reg = BPF_REG_1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	__u8 *frame = calloc(1, size);
	struct bpf_test_run_opts run = { .sz = sizeof(run), .repeat = 1 };
	int fd, err = 0;

	if (!frame)
		return -ENOMEM;
	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "fp_linear", "GPL", insns,
			   sizeof(insns) / sizeof(insns[0]), NULL);
	if (fd < 0) {
		err = -errno;
		fp_err("cannot load the frame-size probe: %s\n", strerror(-err));
		goto out;
	}
	run.data_in = frame;
	run.data_size_in = size;
	if (bpf_prog_test_run_opts(fd, &run)) {
		err = -errno;
		fp_err("frame-size probe of %u bytes: %s\n", size, strerror(-err));
	} else {
		*linear = run.retval;
	}
	close(fd);
out:
	free(frame);
	return err;
}

/*
 * Refuses (message naming the file and packet) a capture with a frame that the XDP
 * program would not see whole under BPF_PROG_TEST_RUN. Returns 0 or -EINVAL.
 */
static int check_xdp_frame_sizes(const char *path, const struct capture *cap)
{
	__u32 largest = 0, linear = 0;
	int err;

	for (size_t i = 0; i < cap->n; i++)
		if (cap->packets[i].hdr.caplen > largest)
			largest = cap->packets[i].hdr.caplen;
	if (!largest)
		return 0;
	err = xdp_linear_limit(largest, &linear);
	if (err)
		return err;
	if (linear >= largest)
		return 0;
	for (size_t i = 0; i < cap->n; i++) {
		if (cap->packets[i].hdr.caplen <= linear)
			continue;
		fp_err("%s: packet %zu: %u bytes; this kernel's BPF_PROG_TEST_RUN gives an XDP "
		       "program the first %u bytes of such a frame and the rest as fragments, "
		       "which flowpin's program does not read: replay cannot decide it as a node "
		       "receiving it whole would (nothing replayed)\n",
		       path, i + 1, cap->packets[i].hdr.caplen, linear);
		break;
	}
	return -EINVAL;
}

/* A 32-bit field of a frame, wherever it is: frames have no alignment (UBSan). */
static __be32 get_be32(const __u8 *p)
{
	__be32 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * Parses Ethernet (up to two VLAN tags), IPv4 or IPv6 (no extension headers) and the
 * ports, from offset 0 of @p. Only for the printed line: the program's own parser
 * decides. Returns the offset after the IP header, or -1 when it is not IP.
 */
static int parse_ip(const __u8 *p, size_t len, size_t off, __u16 ethertype, struct frame_info *fi)
{
	size_t l4;

	memset(fi, 0, sizeof(*fi));
	if (ethertype == ETH_P_IP) {
		if (off + 20 > len || (p[off] >> 4) != 4 || (p[off] & 0xf) < 5)
			return -1;
		fp_addr_from_v4(fi->src.a, get_be32(p + off + 12));
		fp_addr_from_v4(fi->dst.a, get_be32(p + off + 16));
		fi->proto = p[off + 9];
		fi->ip_end = off + ntohs(*(const __be16 *)(p + off + 2));
		l4 = off + (p[off] & 0xf) * 4;
		fi->fragment = (ntohs(*(const __be16 *)(p + off + 6)) & 0x3fff) != 0;
		/* A non-first fragment has no ports. */
		if ((ntohs(*(const __be16 *)(p + off + 6)) & 0x1fff) != 0)
			l4 = len;
	} else if (ethertype == ETH_P_IPV6) {
		if (off + 40 > len || (p[off] >> 4) != 6)
			return -1;
		memcpy(fi->src.a, p + off + 8, 16);
		memcpy(fi->dst.a, p + off + 24, 16);
		fi->proto = p[off + 6];
		fi->ip_end = off + 40 + ntohs(*(const __be16 *)(p + off + 4));
		l4 = off + 40;
	} else {
		return -1;
	}
	fi->is_ip = 1;
	if (fi->ip_end > len)
		fi->ip_end = len;
	if ((fi->proto == IPPROTO_TCP || fi->proto == IPPROTO_UDP) && l4 + 4 <= len) {
		fi->sport = ntohs(*(const __be16 *)(p + l4));
		fi->dport = ntohs(*(const __be16 *)(p + l4 + 2));
		if (fi->proto == IPPROTO_TCP && l4 + 14 <= len)
			fi->tcp_syn = (p[l4 + 13] & 0x12) == 0x02;
	}
	return (int)l4;
}

static int parse_frame(const __u8 *p, size_t len, struct frame_info *fi)
{
	size_t off = ETH_HLEN;
	__u16 type;

	memset(fi, 0, sizeof(*fi));
	if (len < ETH_HLEN)
		return -1;
	type = ntohs(*(const __be16 *)(p + 12));
	for (int tags = 0; tags < 2 && (type == ETH_P_8021Q || type == ETH_P_8021AD); tags++) {
		if (off + 4 > len)
			return -1;
		type = ntohs(*(const __be16 *)(p + off + 2));
		off += 4;
	}
	return parse_ip(p, len, off, type, fi);
}

/* Decodes the flowpin encapsulation of an output frame. Returns 0 or -EINVAL. */
static int parse_encap(const __u8 *p, size_t len, struct encap_info *ei)
{
	struct frame_info outer;
	struct fp_guehdr gue; /* copies: the headers are not aligned in the frame */
	struct fp_gue_priv priv;
	int l4, v6;
	size_t off, hop_size;

	memset(ei, 0, sizeof(*ei));
	l4 = parse_frame(p, len, &outer);
	if (l4 < 0 || outer.proto != IPPROTO_UDP)
		return -EINVAL;
	off = (size_t)l4 + 8;
	if (off + sizeof(gue) + sizeof(priv) > len)
		return -EINVAL;
	memcpy(&gue, p + off, sizeof(gue));
	memcpy(&priv, p + off + sizeof(gue), sizeof(priv));
	if (priv.type != FP_PRIV_TYPE_HOPS || priv.hop_count == 0 || priv.hop_count > FP_MAX_HOPS)
		return -EINVAL;
	v6 = !!(priv.flags & FP_PRIV_FLAG_V6);
	hop_size = fp_hop_size(v6);
	off += sizeof(gue) + sizeof(priv);
	if (off + priv.hop_count * hop_size > len)
		return -EINVAL;
	for (int i = 0; i < priv.hop_count; i++) {
		if (v6)
			memcpy(ei->hops[i].a, p + off + i * hop_size, 16);
		else
			fp_addr_from_v4(ei->hops[i].a, get_be32(p + off + i * hop_size));
	}
	ei->hop_count = priv.hop_count;
	ei->hop_index = priv.hop_index;
	ei->generation = ntohl(priv.generation);
	off += priv.hop_count * hop_size;
	if (gue.proto != IPPROTO_IPIP && gue.proto != IPPROTO_IPV6)
		return -EINVAL;
	if (parse_ip(p, len, off, gue.proto == IPPROTO_IPIP ? ETH_P_IP : ETH_P_IPV6, &ei->inner) <
	    0)
		return -EINVAL;
	return 0;
}

static const struct fp_vip_cfg *find_vip(const struct fp_config *cfg, const struct frame_info *fi)
{
	const struct fp_vip_cfg *any_port = NULL;

	for (size_t i = 0; i < cfg->n_vips; i++) {
		const struct fp_vip_cfg *v = &cfg->vips[i];

		if (memcmp(v->addr.a, fi->dst.a, 16) || v->proto != fi->proto)
			continue;
		if (v->port == fi->dport)
			return v;
		if (v->port == 0)
			any_port = v;
	}
	return any_port;
}

/* The first VIP on @addr, any port and protocol (for ICMP errors). */
static const struct fp_vip_cfg *find_vip_address(const struct fp_config *cfg,
						 const struct fp_addr *addr)
{
	for (size_t i = 0; i < cfg->n_vips; i++)
		if (!memcmp(cfg->vips[i].addr.a, addr->a, 16))
			return &cfg->vips[i];
	return NULL;
}

/*
 * The id of the backend at @addr: in @vip, or (ICMP errors, which do not say their VIP's
 * port) in any VIP on @vip's address. FP_NO_BACKEND when none has it.
 */
static __u32 backend_in(const struct fp_vip_cfg *vip, const struct fp_addr *addr)
{
	for (size_t i = 0; i < vip->n_backends; i++)
		if (!memcmp(vip->backends[i].addr.a, addr->a, 16))
			return vip->backends[i].id;
	return FP_NO_BACKEND;
}

static __u32 backend_id(const struct fp_config *cfg, const struct fp_vip_cfg *vip,
			const struct fp_addr *addr)
{
	__u32 id;

	if (!vip)
		return FP_NO_BACKEND;
	id = backend_in(vip, addr);
	for (size_t v = 0; id == FP_NO_BACKEND && v < cfg->n_vips; v++)
		if (!memcmp(cfg->vips[v].addr.a, vip->addr.a, 16))
			id = backend_in(&cfg->vips[v], addr);
	return id;
}

static const char *verdict_name(__u32 v)
{
	switch (v) {
	case XDP_ABORTED:
		return "ABORTED";
	case XDP_DROP:
		return "DROP";
	case XDP_PASS:
		return "PASS";
	case XDP_TX:
		return "TX";
	case XDP_REDIRECT:
		return "REDIRECT";
	}
	return "?";
}

/* Prints the names of the global counters that moved between @before and @after. */
static void print_reasons(const __u64 *before, const __u64 *after)
{
	int printed = 0;

	fputs(" reason=", stdout);
	for (int i = 0; i < FP_CNT__MAX; i++) {
		if (after[i] == before[i])
			continue;
		printf("%s%s", printed ? "," : "", fp_counter_names[i]);
		printed = 1;
	}
	if (!printed)
		fputs("-", stdout);
}

/*
 * For a UDP packet to a VIP with quic_lb: " quic_sid=HEX", the server ID its destination
 * CID names by lib/quiclb.c's decoder (the XDP program decodes the same way;
 * tests/bpf/test_replay.c compares them), or " quic_sid=-" (unroutable: no CID of the
 * VIP's length, other config bits; the reason counters say which). The DCID is taken
 * as bpf/quic.h takes it: a long header carries its length, a short header has the
 * VIP's.
 */
static void print_quic_sid(const struct fp_vip_cfg *vip, const __u8 *p, size_t len)
{
	__u8 sid[FP_QUICLB_MAX_SID];
	size_t off, dcid_len = 0;
	struct frame_info fi;
	int l4;

	if (!vip || !vip->has_quic_lb || vip->proto != IPPROTO_UDP)
		return;
	l4 = parse_frame(p, len, &fi);
	if (l4 < 0 || fi.proto != IPPROTO_UDP)
		return;
	off = (size_t)l4 + 8; /* the UDP payload, within fi.ip_end (not link-layer padding) */
	if (off < fi.ip_end && !(p[off] & 0x80)) {
		dcid_len = fp_quiclb_cid_len(&vip->quic_lb);
		off += 1;
	} else if (off + 6 <= fi.ip_end && p[off + 5] <= FP_QUICLB_MAX_CID) {
		dcid_len = p[off + 5];
		off += 6;
	}
	if (!dcid_len || off + dcid_len > fi.ip_end ||
	    fp_quiclb_decode(&vip->quic_lb, p + off, dcid_len, sid)) {
		fputs(" quic_sid=-", stdout);
		return;
	}
	fputs(" quic_sid=", stdout);
	for (__u8 i = 0; i < vip->quic_lb.server_id_len; i++)
		printf("%02x", sid[i]);
}

/*
 * The TSecr of the TCP header at @p + @l4 (frame length @len), by the rules of the
 * program's parser (bpf/parse.h fp_tcp_timestamp()): the first timestamp option among
 * at most 40 option bytes within doff and the frame, none after an EOL, none when doff
 * is below 5, an option's length below 2 or past doff, or the timestamp option's length
 * not 10. Returns 1 with *@tsecr set, or 0.
 */
static int tcp_tsecr(const __u8 *p, size_t len, size_t l4, __u32 *tsecr)
{
	size_t doff, end, off;

	if (l4 + 20 > len)
		return 0;
	doff = (size_t)(p[l4 + 12] >> 4) * 4;
	end = l4 + doff;
	if (doff < 20 || end > len)
		return 0;
	for (off = l4 + 20; off < end;) {
		__u8 kind = p[off], olen;

		if (kind == 0) /* EOL */
			return 0;
		if (kind == 1) { /* NOP */
			off++;
			continue;
		}
		if (off + 2 > end)
			return 0;
		olen = p[off + 1];
		if (olen < 2 || off + olen > end)
			return 0;
		if (kind == 8) {
			if (olen != 10)
				return 0;
			*tsecr = ntohl(get_be32(p + off + 6));
			return 1;
		}
		off += olen;
	}
	return 0;
}

/*
 * For a TCP segment to a VIP with tickets, what step 3 reads on a session miss
 * (docs/design.md): " ticket=syn" (a SYN echoes nothing and never takes a ticket),
 * " ticket=no_timestamp", or " tsecr=HEX ticket=ID(STATE) step3=take|no": the server
 * id the TSecr names, decoded with the program's own fp_ticket_sid() under the ticket
 * key the loader derives from hash_key, the state of the VIP's backend with that id
 * (unknown: none), and whether step 3 sends the segment there on a session miss (a
 * backend that is not down). Nothing for fragments and other VIPs. The reason
 * counters say what the program did: ticket_hit, ticket_invalid, ticket_no_timestamp,
 * or session_hit (a session answers before any ticket is read).
 */
static void print_tcp_ticket(const struct fp_config *cfg, const struct fp_vip_cfg *vip,
			     const __u8 *p, size_t len)
{
	const struct fp_backend_cfg *b = NULL;
	struct fp_hash_key key;
	struct fp_flow_key flow = {};
	struct frame_info fi;
	__u32 tsecr;
	__u16 sid;
	int l4;

	if (!vip || !vip->ticket_bits || vip->proto != IPPROTO_TCP)
		return;
	l4 = parse_frame(p, len, &fi);
	if (l4 < 0 || fi.proto != IPPROTO_TCP || fi.fragment || (size_t)l4 + 20 > len)
		return;
	if (p[l4 + 13] & 0x02) { /* any SYN, SYN-ACK included, as the program tests it */
		fputs(" ticket=syn", stdout);
		return;
	}
	if (!tcp_tsecr(p, len, (size_t)l4, &tsecr)) {
		fputs(" ticket=no_timestamp", stdout);
		return;
	}
	memcpy(flow.src, fi.src.a, 16);
	memcpy(flow.dst, fi.dst.a, 16);
	flow.sport = htons(fi.sport);
	flow.dport = htons(fi.dport);
	flow.proto = IPPROTO_TCP;
	fp_ticket_key_derive(&cfg->hash_key, &key);
	sid = fp_ticket_sid(tsecr, fp_ticket_flow_hash(&key, &flow), vip->ticket_bits);
	for (size_t i = 0; i < vip->n_backends && !b; i++)
		if (vip->backends[i].id == sid)
			b = &vip->backends[i];
	printf(" tsecr=%08x ticket=%u(%s) step3=%s", tsecr, sid,
	       b ? fp_backend_state_name(b->state) : "unknown",
	       b && b->state != FP_BACKEND_DOWN ? "take" : "no");
}

static void print_line(size_t number, __u32 verdict, const struct fp_config *cfg, const __u8 *in,
		       size_t in_len, const __u8 *out, size_t out_len)
{
	char buf[INET6_ADDRSTRLEN + 8], addr[INET6_ADDRSTRLEN];
	const struct fp_vip_cfg *vip = NULL;
	struct encap_info ei;
	struct frame_info fi;

	printf("%zu %s", number, verdict_name(verdict));
	if (parse_frame(in, in_len, &fi) >= 0)
		vip = find_vip(cfg, &fi);
	if (vip) {
		printf(" vip=%s/%s", cli_endpoint_str(&fi.dst, fi.dport, buf, sizeof(buf)),
		       cli_proto_name(fi.proto));
	} else if (fi.is_ip && (fi.proto == IPPROTO_ICMP || fi.proto == IPPROTO_ICMPV6) &&
		   (vip = find_vip_address(cfg, &fi.dst))) {
		/* An ICMP error to a VIP address: the program routes it by the quoted flow. */
		printf(" vip=%s/icmp", fp_addr_str(&fi.dst, addr, sizeof(addr)));
	} else {
		fputs(" vip=-", stdout);
	}
	if ((verdict == XDP_TX || verdict == XDP_REDIRECT) && !parse_encap(out, out_len, &ei)) {
		const struct fp_addr *to = &ei.hops[ei.hop_index < ei.hop_count ? ei.hop_index : 0];

		printf(" backend=%u(%s) hops=", backend_id(cfg, vip, to),
		       fp_addr_str(to, addr, sizeof(addr)));
		for (int i = 0; i < ei.hop_count; i++)
			printf("%s%s", i ? "," : "", fp_addr_str(&ei.hops[i], addr, sizeof(addr)));
		printf(" gen=%u", ei.generation);
	} else if (verdict == XDP_TX || verdict == XDP_REDIRECT) {
		fputs(" backend=? hops=? gen=?", stdout);
	} else {
		fputs(" backend=- hops=- gen=-", stdout);
	}
	print_quic_sid(vip, in, in_len);
	print_tcp_ticket(cfg, vip, in, in_len);
}

/* ---- --backend: the backend agent's tc program ------------------------------------ */

struct backend_replay {
	const char *config_path, *in_path, *out_path, *sockets_path;
	struct fp_addr self[FP_BACKEND_MAX_SELF];
	size_t n_self;
	struct {
		struct fp_addr vip, client;
		__u16 vip_port, client_port;
		char text[128]; /* as given, for messages */
	} sockets[REPLAY_MAX_SOCKETS];
	size_t n_sockets;
	__u8 mac[6];
	int have_mac;
};

/* "ADDR:PORT" or "[ADDR]:PORT" (IPv6). Returns 0 or -EINVAL. */
static int parse_endpoint(const char *s, size_t len, struct fp_addr *a, __u16 *port)
{
	char buf[INET6_ADDRSTRLEN + 8], *colon, *end, *addr = buf;
	unsigned long p;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = 0;
	colon = strrchr(buf, ':');
	if (!colon)
		return -EINVAL;
	*colon = 0;
	if (buf[0] == '[') {
		if (colon == buf || colon[-1] != ']')
			return -EINVAL;
		colon[-1] = 0;
		addr = buf + 1;
		if (fp_addr_parse(addr, a) || fp_addr_v4(a))
			return -EINVAL;
	} else if (fp_addr_parse(addr, a) || !fp_addr_v4(a)) {
		return -EINVAL; /* IPv6 needs its brackets */
	}
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p == 0 || p > 65535)
		return -EINVAL;
	*port = (__u16)p;
	return 0;
}

/*
 * "VIP:PORT-CLIENT:PORT" into the next socket of @r; @where names the place for the
 * message ("--socket" or "FILE:LINE: socket"). Returns 0, or -EINVAL after a message.
 */
static int add_socket(struct backend_replay *r, const char *spec, const char *where)
{
	const char *dash = strchr(spec, '-');
	size_t i = r->n_sockets;

	if (i == REPLAY_MAX_SOCKETS) {
		fp_err("%s: '%s': more than %d sockets\n", where, spec, REPLAY_MAX_SOCKETS);
		return -EINVAL;
	}
	if (!dash ||
	    parse_endpoint(spec, (size_t)(dash - spec), &r->sockets[i].vip,
			   &r->sockets[i].vip_port) ||
	    parse_endpoint(dash + 1, strlen(dash + 1), &r->sockets[i].client,
			   &r->sockets[i].client_port)) {
		fp_err("%s: '%s': not VIP:PORT-CLIENT:PORT (IPv6 as [ADDR]:PORT)\n", where, spec);
		return -EINVAL;
	}
	if (fp_addr_v4(&r->sockets[i].vip) != fp_addr_v4(&r->sockets[i].client)) {
		fp_err("%s: '%s': VIP and client of different families\n", where, spec);
		return -EINVAL;
	}
	snprintf(r->sockets[i].text, sizeof(r->sockets[i].text), "%s", spec);
	r->n_sockets++;
	return 0;
}

/* --sockets FILE: one VIP:PORT-CLIENT:PORT per line, blank lines and '#' comments. */
static int read_sockets(struct backend_replay *r, const char *path)
{
	char line[256], where[PATH_MAX + 32];
	int number = 0, err = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		fp_err("%s: %s\n", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s = line, *e;

		number++;
		s[strcspn(s, "#\r\n")] = 0;
		while (*s == ' ' || *s == '\t')
			s++;
		for (e = s + strlen(s); e > s && (e[-1] == ' ' || e[-1] == '\t'); e--)
			e[-1] = 0;
		if (!*s)
			continue;
		snprintf(where, sizeof(where), "%s:%d: socket", path, number);
		if (add_socket(r, s, where))
			err = -EINVAL; /* every bad line, not only the first */
	}
	fclose(f);
	return err;
}

static int sock_address(const struct fp_addr *a, __u16 port, struct sockaddr_storage *ss,
			socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (fp_addr_v4(a)) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, a->a + 12, 4);
		*len = sizeof(*sin);
		return AF_INET;
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	memcpy(&sin6->sin6_addr, a->a, 16);
	*len = sizeof(*sin6);
	return AF_INET6;
}

/* `ip addr replace A/32|128 dev lo` in replay's namespace (an address there already is fine). */
static int address_on_lo(const struct fp_addr *a)
{
	char addr[INET6_ADDRSTRLEN], cmd[INET6_ADDRSTRLEN + 64];

	fp_addr_str(a, addr, sizeof(addr));
	snprintf(cmd, sizeof(cmd), "ip addr replace %s/%s dev lo%s 2>/dev/null", addr,
		 fp_addr_v4(a) ? "32" : "128", fp_addr_v4(a) ? "" : " nodad");
	return system(cmd) == 0 ? 0 : -EIO;
}

/*
 * Makes every --socket a real established connection in replay's namespace: both
 * addresses on lo, a listener on VIP:PORT, a connect from CLIENT:PORT. The descriptors
 * stay open (in @fds) until replay ends. Returns 0 or a negative errno after a message.
 */
static int make_sockets(const struct backend_replay *r, int *fds, size_t *n_fds)
{
	for (size_t i = 0; i < r->n_sockets; i++) {
		struct sockaddr_storage vip, client;
		socklen_t vip_len, client_len;
		int one = 1, family, lfd, cfd, afd;

		family = sock_address(&r->sockets[i].vip, r->sockets[i].vip_port, &vip, &vip_len);
		sock_address(&r->sockets[i].client, r->sockets[i].client_port, &client,
			     &client_len);
		if (address_on_lo(&r->sockets[i].vip) || address_on_lo(&r->sockets[i].client)) {
			fp_err("--socket %s: cannot add its addresses to lo\n", r->sockets[i].text);
			return -EIO;
		}
		lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd >= 0)
			fds[(*n_fds)++] = lfd;
		/* A second socket on the same VIP:PORT shares the first's listener. */
		if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
		    bind(lfd, (struct sockaddr *)&vip, vip_len) || listen(lfd, 4)) {
			fp_err("--socket %s: cannot listen on the VIP: %s\n", r->sockets[i].text,
			       strerror(errno));
			return -errno;
		}
		cfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (cfd >= 0)
			fds[(*n_fds)++] = cfd;
		if (cfd < 0 || setsockopt(cfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    bind(cfd, (struct sockaddr *)&client, client_len) ||
		    connect(cfd, (struct sockaddr *)&vip, vip_len)) {
			fp_err("--socket %s: cannot connect: %s\n", r->sockets[i].text,
			       strerror(errno));
			return -errno;
		}
		afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (afd < 0) {
			fp_err("--socket %s: cannot accept: %s\n", r->sockets[i].text,
			       strerror(errno));
			return -errno;
		}
		fds[(*n_fds)++] = afd;
	}
	return 0;
}

/* What the backend program did, by the tc verdict and the counter that moved. */
static const char *backend_verdict_name(int retval, int counter)
{
	if (retval == TC_ACT_REDIRECT)
		return counter == FP_BACKEND_TUNNEL_PROBE ? "REFLECT" : "FORWARD";
	if (retval == TC_ACT_SHOT)
		return "DROP";
	if (retval == TC_ACT_OK)
		return counter == FP_BACKEND_NOT_FLOWPIN ? "PASS" : "DELIVER";
	return "?";
}

/* One line: verdict, the inner packet's VIP and client, where it was sent, the counter. */
static void print_backend_line(size_t number, int retval, int counter, const struct fp_config *cfg,
			       const __u8 *in, size_t in_len, const __u8 *out, size_t out_len)
{
	char buf[INET6_ADDRSTRLEN + 8], addr[INET6_ADDRSTRLEN];
	const struct fp_vip_cfg *vip = NULL;
	struct encap_info ei;
	struct frame_info fi;

	printf("%zu %s", number, backend_verdict_name(retval, counter));
	if (!parse_encap(in, in_len, &ei)) {
		vip = find_vip(cfg, &ei.inner);
		if (!vip && ei.inner.is_ip)
			vip = find_vip_address(cfg, &ei.inner.dst);
	}
	if (vip && ei.inner.sport)
		printf(" vip=%s/%s",
		       cli_endpoint_str(&ei.inner.dst, ei.inner.dport, buf, sizeof(buf)),
		       cli_proto_name(ei.inner.proto));
	else if (vip)
		printf(" vip=%s/%s", fp_addr_str(&ei.inner.dst, addr, sizeof(addr)),
		       ei.inner.proto == IPPROTO_ICMP || ei.inner.proto == IPPROTO_ICMPV6
			       ? "icmp"
			       : cli_proto_name(ei.inner.proto));
	else
		fputs(" vip=-", stdout);
	if (vip && ei.inner.sport)
		printf(" client=%s",
		       cli_endpoint_str(&ei.inner.src, ei.inner.sport, buf, sizeof(buf)));
	else if (vip)
		printf(" client=%s", fp_addr_str(&ei.inner.src, addr, sizeof(addr)));
	else
		fputs(" client=-", stdout);
	if (retval == TC_ACT_REDIRECT && counter == FP_BACKEND_TUNNEL_PROBE &&
	    parse_frame(out, out_len, &fi) >= 0)
		printf(" to=lb(%s)", fp_addr_str(&fi.dst, addr, sizeof(addr)));
	else if (retval == TC_ACT_REDIRECT && parse_frame(out, out_len, &fi) >= 0)
		printf(" to=%u(%s)", backend_id(cfg, vip, &fi.dst),
		       fp_addr_str(&fi.dst, addr, sizeof(addr)));
	else if (retval == TC_ACT_REDIRECT)
		fputs(" to=?", stdout);
	else
		fputs(" to=-", stdout);
	printf(" reason=%s\n", counter >= 0 ? fp_backend_counter_name((unsigned int)counter) : "-");
}

/* Is the destination MAC of @frame one this backend takes as its own? */
static int frame_for_us(const struct backend_replay *r, const __u8 *frame)
{
	if (r->have_mac)
		return !memcmp(frame, r->mac, 6);
	return !(frame[0] & 1); /* unicast */
}

static int replay_backend(struct backend_replay *r, const __u8 next_hop_mac[6])
{
	__u64 before[FP_BACKEND_NR_COUNTERS], after[FP_BACKEND_NR_COUNTERS];
	size_t delivered = 0, forwarded = 0, reflected = 0, passed = 0, dropped = 0, n_fds = 0;
	struct fp_backend_opts opts = {};
	struct capture cap = {};
	struct fp_config *cfg = NULL;
	struct fp_backend *be = NULL;
	struct fp_fibns ns;
	pcap_t *dead = NULL;
	pcap_dumper_t *dumper = NULL;
	int fds[3 * REPLAY_MAX_SOCKETS];
	__u8 *frame = NULL, *in = NULL;
	int err, rc = 1;

	if (r->sockets_path && read_sockets(r, r->sockets_path))
		goto out;
	err = fp_config_load(r->config_path, &cfg, stderr);
	if (err)
		goto out;
	if (!cfg->n_lb_sources) {
		fp_err("%s: lb_sources: empty: the backend would drop every encapsulated packet\n",
		       r->config_path);
		goto out;
	}
	err = capture_read(r->in_path, &cap);
	if (err)
		goto out;
	err = fp_fibns_enter(next_hop_mac, &ns);
	if (!err)
		err = make_sockets(r, fds, &n_fds);
	if (err)
		goto out;
	opts.encap_port = cfg->encap_port;
	opts.lb_sources = cfg->lb_sources;
	opts.n_lb_sources = cfg->n_lb_sources;
	opts.self_addrs = r->self;
	opts.n_self_addrs = r->n_self;
	opts.vips = cfg->vips;
	opts.n_vips = cfg->n_vips;
	opts.hash_key = &cfg->hash_key; /* TCP tickets of the --self backends restored */
	err = fp_backend_load(&opts, &be);
	if (err)
		goto out;
	if (r->out_path) {
		dead = pcap_open_dead(DLT_EN10MB, 65535);
		dumper = dead ? pcap_dump_open(dead, r->out_path) : NULL;
		if (!dumper) {
			fp_err("%s: %s\n", r->out_path, dead ? pcap_geterr(dead) : "no memory");
			goto out;
		}
	}
	frame = malloc(REPLAY_MAX_FRAME);
	in = calloc(1, REPLAY_MAX_FRAME);
	if (!frame || !in)
		goto out;
	/*
	 * An skb test run refuses data above about a page less the skb's own overhead
	 * (EINVAL): find such a frame before anything is replayed. A zero frame of the
	 * same size is not IP, so the program passes it and nothing but not_flowpin moves.
	 */
	for (size_t i = 0; i < cap.n; i++) {
		struct bpf_test_run_opts run = { .sz = sizeof(run),
						 .data_in = in,
						 .data_size_in = cap.packets[i].hdr.caplen,
						 .repeat = 1 };

		if (cap.packets[i].hdr.caplen <= 1514 ||
		    !bpf_prog_test_run_opts(fp_backend_prog_fd(be), &run))
			continue;
		fp_err("%s: packet %zu: %u bytes; this kernel's BPF_PROG_TEST_RUN takes no frame "
		       "this large for a tc program (%s): replay cannot decide it (nothing "
		       "replayed)\n",
		       r->in_path, i + 1, cap.packets[i].hdr.caplen, strerror(errno));
		goto out;
	}

	for (size_t i = 0; i < cap.n; i++) {
		struct replay_packet *pkt = &cap.packets[i];
		struct __sk_buff ctx = { .ifindex = (__u32)ns.ifindex,
					 .ingress_ifindex = (__u32)ns.ifindex };
		struct bpf_test_run_opts run = {
			.sz = sizeof(run),
			.data_in = in,
			.data_size_in = pkt->hdr.caplen,
			.data_out = frame,
			.data_size_out = REPLAY_MAX_FRAME,
			.ctx_in = &ctx,
			.ctx_size_in = sizeof(ctx),
			.repeat = 1,
		};
		int counter = -1;

		/* The kernel decides "addressed to this host" by the device's MAC. */
		memcpy(in, pkt->data, pkt->hdr.caplen);
		if (frame_for_us(r, in))
			memcpy(in, ns.own_mac, 6);
		err = fp_backend_read_counters(fp_backend_counters_fd(be), before);
		if (!err && bpf_prog_test_run_opts(fp_backend_prog_fd(be), &run))
			err = -errno;
		if (!err)
			err = fp_backend_read_counters(fp_backend_counters_fd(be), after);
		if (err) {
			fp_err("packet %zu: test run failed: %s\n", i + 1, strerror(-err));
			goto out;
		}
		for (int c = 0; c < FP_BACKEND_NR_COUNTERS; c++)
			if (after[c] != before[c])
				counter = c;
		print_backend_line(i + 1, (int)run.retval, counter, cfg, pkt->data, pkt->hdr.caplen,
				   frame, run.data_size_out);
		if (run.retval == TC_ACT_REDIRECT && counter == FP_BACKEND_TUNNEL_PROBE)
			reflected++;
		else if (run.retval == TC_ACT_REDIRECT)
			forwarded++;
		else if (run.retval == TC_ACT_SHOT)
			dropped++;
		else if (counter == FP_BACKEND_NOT_FLOWPIN)
			passed++;
		else
			delivered++;
		if (dumper && (run.retval == TC_ACT_REDIRECT ||
			       (run.retval == TC_ACT_OK && counter != FP_BACKEND_NOT_FLOWPIN))) {
			struct pcap_pkthdr h = pkt->hdr;

			h.caplen = h.len = run.data_size_out;
			pcap_dump((u_char *)dumper, &h, frame);
		}
	}
	fflush(stdout);
	fp_info("%zu packets: %zu delivered, %zu forwarded, %zu reflected, %zu passed, %zu dropped "
		"(backend)\n",
		cap.n, delivered, forwarded, reflected, passed, dropped);
	rc = 0;
out:
	if (dumper)
		pcap_dump_close(dumper);
	if (dead)
		pcap_close(dead);
	if (rc && dumper)
		unlink(r->out_path);
	for (size_t i = 0; i < n_fds; i++)
		close(fds[i]);
	free(frame);
	free(in);
	fp_backend_destroy(be);
	capture_free(&cap);
	fp_config_free(cfg);
	return rc;
}

struct replay_opts {
	const char *config, *in, *out;
	__u8 next_hop_mac[6];
	struct cli_sources sources;
	int keep;		  /* --lb-state keep */
	int backend;		  /* --backend */
	int lb_only;		  /* an option of the LB replay was given */
	const char *backend_only; /* an option of the backend replay that was given */
	struct backend_replay *br;
};

static int replay_option(void *opts, int opt, const char *arg)
{
	struct replay_opts *o = opts;

	switch (opt) {
	case 'c':
		o->config = arg;
		break;
	case 'B':
		o->backend = 1;
		break;
	case 'E':
		o->backend_only = "--self";
		if (o->br->n_self == FP_BACKEND_MAX_SELF ||
		    fp_addr_parse(arg, &o->br->self[o->br->n_self])) {
			fprintf(stderr,
				"flowpin replay: --self: '%s' is not an IPv4 or IPv6 "
				"address (at most %d of them)\n",
				arg, FP_BACKEND_MAX_SELF);
			return 2;
		}
		o->br->n_self++;
		break;
	case 'k':
		o->backend_only = "--socket";
		if (add_socket(o->br, arg, "flowpin replay: --socket"))
			return 2;
		break;
	case 'K':
		o->backend_only = "--sockets";
		o->br->sockets_path = arg;
		break;
	case 'M':
		if (fp_mac_parse(arg, o->br->mac)) {
			fprintf(stderr,
				"flowpin replay: --mac: '%s' is not a MAC address "
				"(aa:bb:cc:dd:ee:ff)\n",
				arg);
			return 2;
		}
		o->br->have_mac = 1;
		break;
	case 'i':
		o->in = arg;
		break;
	case 'o':
		o->out = arg;
		break;
	case 's':
		o->lb_only = 1;
		if (!strcmp(arg, "keep")) {
			o->keep = 1;
		} else if (!strcmp(arg, "fresh")) {
			o->keep = 0;
		} else {
			fprintf(stderr,
				"flowpin replay: --lb-state: '%s' is neither "
				"'fresh' nor 'keep'\n",
				arg);
			return 2;
		}
		break;
	case 'm':
		if (fp_mac_parse(arg, o->next_hop_mac)) {
			fprintf(stderr,
				"flowpin replay: --nexthop-mac: '%s' is not a MAC "
				"address (aa:bb:cc:dd:ee:ff)\n",
				arg);
			return 2;
		}
		break;
	case 'S':
		o->lb_only = 1;
		if (cli_parse_source("replay", arg, &o->sources))
			return 2;
		break;
	}
	return 0;
}

static const struct option replay_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "in", required_argument, NULL, 'i' },
	{ "out", required_argument, NULL, 'o' },
	{ "lb-state", required_argument, NULL, 's' },
	{ "nexthop-mac", required_argument, NULL, 'm' },
	{ "source", required_argument, NULL, 'S' },
	{ "backend", no_argument, NULL, 'B' },
	{ "self", required_argument, NULL, 'E' },
	{ "socket", required_argument, NULL, 'k' },
	{ "sockets", required_argument, NULL, 'K' },
	{ "mac", required_argument, NULL, 'M' },
	{ "help", no_argument, NULL, 'h' },
	{},
};

static const struct cli_command replay_command = {
	"replay", "+h", replay_options, usage, replay_option,
};

int cmd_replay(int argc, char **argv)
{
	__u64 before[FP_CNT__MAX], after[FP_CNT__MAX];
	size_t forwarded = 0, passed = 0, dropped = 0;
	struct capture cap = {};
	struct fp_config *cfg = NULL;
	struct fp_lb *lb = NULL;
	struct fp_fibns ns;
	struct fp_lb_opts opts = {};
	pcap_t *dead = NULL;
	pcap_dumper_t *dumper = NULL;
	__u8 *frame = NULL, *in = NULL;
	static struct backend_replay br; /* large: not on the stack */
	struct replay_opts o = { .next_hop_mac = FP_FIBNS_NEXT_HOP_MAC, .br = &br };
	int err, rc = cli_parse(&replay_command, argc, argv, &o);

	if (rc != CLI_RUN)
		return rc;
	rc = 1;
	if (optind < argc)
		return cli_usage_error("replay", usage, "unexpected argument '%s'\n", argv[optind]);
	if (o.backend) {
		if (o.lb_only)
			return cli_usage_error("replay --backend", NULL,
					       "--lb-state and --source belong to the LB replay\n");
		if (!o.config || !o.in || !o.br->n_self)
			return cli_usage_error("replay --backend", usage,
					       "--config, --in and --self are required\n");
		br.config_path = o.config;
		br.in_path = o.in;
		br.out_path = o.out;
		return replay_backend(&br, o.next_hop_mac);
	}
	if (o.backend_only)
		return cli_usage_error("replay", NULL, "%s belongs to 'replay --backend'\n",
				       o.backend_only);
	if (!o.config || !o.in || !o.out)
		return cli_usage_error("replay", usage, "--config, --in and --out are required\n");

	err = fp_config_load(o.config, &cfg, stderr);
	if (err)
		goto out;
	err = capture_read(o.in, &cap);
	if (!err)
		err = check_xdp_frame_sizes(o.in, &cap);
	if (err)
		goto out;
	err = fp_fibns_enter(o.next_hop_mac, &ns);
	if (err)
		goto out;
	/* Without --source, the namespace's own addresses are the outer o.sources. */
	if (!o.sources.have_v4)
		fp_addr_from_v4(o.sources.v4.a, *(const __be32 *)ns.own_v4);
	if (!o.sources.have_v6)
		memcpy(o.sources.v6.a, ns.own_v6, 16);
	opts.source_v4 = o.sources.v4;
	opts.source_v6 = o.sources.v6;
	opts.have_source_v4 = opts.have_source_v6 = true;
	/* Replay decides every packet: no new-flow ceiling, or a busy capture would turn
	 * into rate-limit decisions the live node would not make at that pace. */
	opts.new_flow_rate = UINT32_MAX;
	/* fresh empties the session table and probation before every packet: o.keep the
	 * array it wipes small. */
	if (!o.keep)
		opts.probation_slots = FP_LB_MIN_PROBATION;
	err = fp_lb_open(cfg, &opts, &lb);
	if (err) {
		fp_err("cannot load the XDP program: %s\n", strerror(-err));
		goto out;
	}
	dead = pcap_open_dead(DLT_EN10MB, 65535);
	if (!dead) {
		err = -ENOMEM;
		goto out;
	}
	dumper = pcap_dump_open(dead, o.out);
	if (!dumper) {
		fp_err("%s: %s\n", o.out, pcap_geterr(dead));
		err = -EIO;
		goto out;
	}
	frame = malloc(REPLAY_MAX_FRAME + FP_MAX_ENCAP_OVERHEAD + 256);
	in = malloc(REPLAY_MAX_FRAME);
	if (!frame || !in) {
		err = -ENOMEM;
		goto out;
	}

	for (size_t i = 0; i < cap.n; i++) {
		struct replay_packet *pkt = &cap.packets[i];
		struct xdp_md ctx = {
			.data_end = pkt->hdr.caplen,
			.ingress_ifindex = (__u32)ns.ifindex,
		};
		struct bpf_test_run_opts run = {
			.sz = sizeof(run),
			.data_in = in,
			.data_size_in = pkt->hdr.caplen,
			.data_out = frame,
			.data_size_out = REPLAY_MAX_FRAME + FP_MAX_ENCAP_OVERHEAD + 256,
			.ctx_in = &ctx,
			.ctx_size_in = sizeof(ctx),
			.repeat = 1,
		};

		if (!o.keep) {
			err = fp_lb_clear_sessions(lb);
			if (err) {
				fp_err("packet %zu: cannot empty the session table: %s\n", i + 1,
				       strerror(-err));
				goto out;
			}
		}
		/* The program acts only on frames to the device's MAC (bpf/own_mac.h). */
		memcpy(in, pkt->data, pkt->hdr.caplen);
		if (frame_for_us(&br, in))
			memcpy(in, ns.own_mac, 6);
		err = fp_lb_read_counters(lb, before);
		if (!err)
			err = bpf_prog_test_run_opts(fp_lb_prog_fd(lb), &run) ? -errno : 0;
		if (!err)
			err = fp_lb_read_counters(lb, after);
		if (err) {
			fp_err("packet %zu: test run failed: %s\n", i + 1, strerror(-err));
			goto out;
		}
		print_line(i + 1, run.retval, cfg, pkt->data, pkt->hdr.caplen, frame,
			   run.data_size_out);
		print_reasons(before, after);
		putchar('\n');
		if (run.retval == XDP_TX || run.retval == XDP_REDIRECT) {
			struct pcap_pkthdr h = pkt->hdr;

			h.caplen = h.len = run.data_size_out;
			pcap_dump((u_char *)dumper, &h, frame);
			forwarded++;
		} else if (run.retval == XDP_PASS) {
			passed++;
		} else {
			dropped++;
		}
	}
	fflush(stdout);
	fp_info("%zu packets: %zu forwarded, %zu passed, %zu dropped (lb-state %s)\n", cap.n,
		forwarded, passed, dropped, o.keep ? "keep" : "fresh");
	rc = 0;
out:
	if (dumper)
		pcap_dump_close(dumper);
	if (dead)
		pcap_close(dead);
	if (rc && dumper)
		unlink(o.out);
	free(frame);
	free(in);
	fp_lb_close(lb);
	capture_free(&cap);
	fp_config_free(cfg);
	return rc;
}
