// SPDX-License-Identifier: MIT
/*
 * flowpin replay: the operators' dry run of a config. Every packet of a capture goes
 * through the real XDP program (bpf/lb.bpf.c, loaded by lib/lb.c exactly as `flowpin lb
 * up` loads it, but attached nowhere) with BPF_PROG_TEST_RUN; forwarded frames go to an
 * output capture and every packet gets one line saying what the program decided and why.
 *
 * Next hops: the program asks bpf_fib_lookup() for the next-hop MAC. Replay runs in a
 * private network namespace (flowpin/fibns.h) whose default routes lead to one gateway
 * whose MAC is --nexthop-mac, so every backend resolves to it, on any machine, without
 * touching the host's tables and without a test mode in the data plane.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/in.h>
/* libpcap's classic-BPF struct bpf_insn clashes with the kernel's eBPF one. */
#define bpf_insn pcap_bpf_insn
#include <pcap/pcap.h>
#undef bpf_insn
#include <bpf/bpf.h>
#include <flowpin/config.h>
#include <flowpin/fibns.h>
#include <flowpin/lb.h>
#include <flowpin/log.h>
#include <flowpin/wire.h>
#include "cli.h"
#include "commands.h"

#define REPLAY_MAX_FRAME 9216 /* jumbo frame; larger captured packets are refused */

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
		"\n"
		"Runs the real XDP program on every packet of IN.pcap (Ethernet captures) with\n"
		"BPF_PROG_TEST_RUN and writes the frames it forwards (XDP_TX/REDIRECT) to\n"
		"OUT.pcap. Prints one line per packet:\n"
		"  N VERDICT vip=ADDR:PORT/PROTO backend=ID(ADDR) hops=ADDR[,ADDR] gen=G "
		"reason=COUNTER[,COUNTER]\n"
		"\n"
		"  --lb-state fresh  every packet meets an empty session table, as on an LB node\n"
		"                    that never saw the flow (default)\n"
		"  --lb-state keep   the session table persists across the capture\n"
		"  --nexthop-mac MAC destination MAC of forwarded frames (default "
		"02:66:70:00:00:fe);\n"
		"                    replay resolves every next hop to it in a private network\n"
		"                    namespace, so the host's routes play no part\n"
		"  --source ADDR     outer source address of its family (give one of each family\n"
		"                    at most; default 192.0.2.1 and 2001:db8::1)\n"
		"\n"
		"Needs root (BPF). Exit status: 0 done, 1 error, 2 usage.\n");
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
		fp_addr_from_v4(fi->src.a, *(const __be32 *)(p + off + 12));
		fp_addr_from_v4(fi->dst.a, *(const __be32 *)(p + off + 16));
		fi->proto = p[off + 9];
		l4 = off + (p[off] & 0xf) * 4;
		/* A non-first fragment has no ports. */
		if ((ntohs(*(const __be16 *)(p + off + 6)) & 0x1fff) != 0)
			l4 = len;
	} else if (ethertype == ETH_P_IPV6) {
		if (off + 40 > len || (p[off] >> 4) != 6)
			return -1;
		memcpy(fi->src.a, p + off + 8, 16);
		memcpy(fi->dst.a, p + off + 24, 16);
		fi->proto = p[off + 6];
		l4 = off + 40;
	} else {
		return -1;
	}
	fi->is_ip = 1;
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
	const struct fp_guehdr *gue;
	const struct fp_gue_priv *priv;
	int l4, v6;
	size_t off, hop_size;

	memset(ei, 0, sizeof(*ei));
	l4 = parse_frame(p, len, &outer);
	if (l4 < 0 || outer.proto != IPPROTO_UDP)
		return -EINVAL;
	off = (size_t)l4 + 8;
	if (off + sizeof(*gue) + sizeof(*priv) > len)
		return -EINVAL;
	gue = (const void *)(p + off);
	priv = (const void *)(p + off + sizeof(*gue));
	if (priv->type != FP_PRIV_TYPE_HOPS || priv->hop_count == 0 ||
	    priv->hop_count > FP_MAX_HOPS)
		return -EINVAL;
	v6 = !!(priv->flags & FP_PRIV_FLAG_V6);
	hop_size = fp_hop_size(v6);
	off += sizeof(*gue) + sizeof(*priv);
	if (off + priv->hop_count * hop_size > len)
		return -EINVAL;
	for (int i = 0; i < priv->hop_count; i++) {
		if (v6)
			memcpy(ei->hops[i].a, p + off + i * hop_size, 16);
		else
			fp_addr_from_v4(ei->hops[i].a, *(const __be32 *)(p + off + i * hop_size));
	}
	ei->hop_count = priv->hop_count;
	ei->hop_index = priv->hop_index;
	ei->generation = ntohl(priv->generation);
	off += priv->hop_count * hop_size;
	if (gue->proto != IPPROTO_IPIP && gue->proto != IPPROTO_IPV6)
		return -EINVAL;
	if (parse_ip(p, len, off, gue->proto == IPPROTO_IPIP ? ETH_P_IP : ETH_P_IPV6, &ei->inner) <
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
}

int cmd_replay(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "in", required_argument, NULL, 'i' },
		{ "out", required_argument, NULL, 'o' },
		{ "lb-state", required_argument, NULL, 's' },
		{ "nexthop-mac", required_argument, NULL, 'm' },
		{ "source", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *config_path = NULL, *in_path = NULL, *out_path = NULL;
	__u8 next_hop_mac[6] = FP_FIBNS_NEXT_HOP_MAC;
	__u64 before[FP_CNT__MAX], after[FP_CNT__MAX];
	size_t forwarded = 0, passed = 0, dropped = 0;
	struct capture cap = {};
	struct fp_config *cfg = NULL;
	struct fp_lb *lb = NULL;
	struct fp_fibns ns;
	struct fp_lb_opts opts = {};
	struct cli_sources sources = {};
	pcap_t *dead = NULL;
	pcap_dumper_t *dumper = NULL;
	__u8 *frame = NULL;
	int keep = 0, opt, err, rc = 1;

	optind = 1;
	while ((opt = cli_getopt("replay", argc, argv, "+h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'i':
			in_path = optarg;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 's':
			if (!strcmp(optarg, "keep")) {
				keep = 1;
			} else if (!strcmp(optarg, "fresh")) {
				keep = 0;
			} else {
				fprintf(stderr,
					"flowpin replay: --lb-state: '%s' is neither "
					"'fresh' nor 'keep'\n",
					optarg);
				return 2;
			}
			break;
		case 'm':
			if (fp_mac_parse(optarg, next_hop_mac)) {
				fprintf(stderr,
					"flowpin replay: --nexthop-mac: '%s' is not a MAC "
					"address (aa:bb:cc:dd:ee:ff)\n",
					optarg);
				return 2;
			}
			break;
		case 'S':
			if (cli_parse_source("replay", optarg, &sources))
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "flowpin replay: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!config_path || !in_path || !out_path) {
		fprintf(stderr, "flowpin replay: --config, --in and --out are required\n");
		usage(stderr);
		return 2;
	}

	err = fp_config_load(config_path, &cfg, stderr);
	if (err)
		goto out;
	err = capture_read(in_path, &cap);
	if (err)
		goto out;
	err = fp_fibns_enter(next_hop_mac, &ns);
	if (err)
		goto out;
	/* Without --source, the namespace's own addresses are the outer sources. */
	if (!sources.have_v4)
		fp_addr_from_v4(sources.v4.a, *(const __be32 *)ns.own_v4);
	if (!sources.have_v6)
		memcpy(sources.v6.a, ns.own_v6, 16);
	opts.source_v4 = sources.v4;
	opts.source_v6 = sources.v6;
	opts.have_source_v4 = opts.have_source_v6 = true;
	/* Replay decides every packet: no new-flow ceiling, or a busy capture would turn
	 * into rate-limit decisions the live node would not make at that pace. */
	opts.new_flow_rate = UINT32_MAX;
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
	dumper = pcap_dump_open(dead, out_path);
	if (!dumper) {
		fp_err("%s: %s\n", out_path, pcap_geterr(dead));
		err = -EIO;
		goto out;
	}
	frame = malloc(REPLAY_MAX_FRAME + FP_MAX_ENCAP_OVERHEAD + 256);
	if (!frame) {
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
			.data_in = pkt->data,
			.data_size_in = pkt->hdr.caplen,
			.data_out = frame,
			.data_size_out = REPLAY_MAX_FRAME + FP_MAX_ENCAP_OVERHEAD + 256,
			.ctx_in = &ctx,
			.ctx_size_in = sizeof(ctx),
			.repeat = 1,
		};

		if (!keep) {
			err = fp_lb_clear_sessions(lb);
			if (err) {
				fp_err("packet %zu: cannot empty the session table: %s\n", i + 1,
				       strerror(-err));
				goto out;
			}
		}
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
		forwarded, passed, dropped, keep ? "keep" : "fresh");
	rc = 0;
out:
	if (dumper)
		pcap_dump_close(dumper);
	if (dead)
		pcap_close(dead);
	if (rc && dumper)
		unlink(out_path);
	free(frame);
	fp_lb_close(lb);
	capture_free(&cap);
	fp_config_free(cfg);
	return rc;
}
