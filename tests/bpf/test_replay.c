// SPDX-License-Identifier: MIT
/*
 * flowpin replay, end to end: a capture written with libpcap from the test frame
 * builders goes through `build/flowpin replay`; the output capture must hold exactly
 * the frames an LB emits (tests/common/pkt.c fp_pkt_encap, with the backend the
 * userspace Maglev table and flow hash name: an implementation independent of the BPF
 * program), and the printed lines must name verdict, VIP, backend, hops and the
 * counters that moved. `fresh` and `keep` must differ exactly where a session exists.
 * Needs root (BPF, network namespace); skips otherwise.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <cmocka.h>
#include <flowpin/config.h>
#include <flowpin/hash.h>
#include <flowpin/maglev.h>
#include <flowpin/quiclb.h>
#include <flowpin/tunnelprobe.h>
#include "common/pkt.h"
#include "common/ticket_vectors.h"
#include "common/run.h"

#define TABLE_SIZE 251
#define NEXT_HOP   "02:aa:bb:cc:dd:ee"

static const char config_yaml[] = "hash_key: 0f0e0d0c0b0a09080706050403020100\n"
				  "table_size: 251\n"
				  "encap_port: 6080\n"
				  "vips:\n"
				  "  - name: web\n"
				  "    address: 198.51.100.10\n"
				  "    port: 443\n"
				  "    protocol: tcp\n"
				  "    pinning: full\n"
				  "    backends:\n"
				  "      - { id: 1, address: 10.20.0.1 }\n"
				  "      - { id: 2, address: 10.20.0.2 }\n"
				  "  - name: web6\n"
				  "    address: 2001:db8:100::10\n"
				  "    port: 443\n"
				  "    protocol: tcp\n"
				  "    pinning: full\n"
				  "    backends:\n"
				  "      - { id: 5, address: fd00:20::5 }\n"
				  "      - { id: 6, address: fd00:20::6 }\n";

/* The capture: (spec, expected verdict) in order. */
enum { N_PACKETS = 6 };

struct fixture {
	char dir[64];
	char config[96], in[96], out[96];
	char flowpin[PATH_MAX];
	struct fp_config *cfg;
	struct fp_pkt_spec specs[N_PACKETS];
	__u8 quoted[28]; /* packet 6 quotes the backend's reply: IP header + 8 bytes */
};

static struct fp_pkt_spec v4_flow(__u8 flags)
{
	struct fp_pkt_spec s = {};

	s.src = fp_pkt_addr("203.0.113.7");
	s.dst = fp_pkt_addr("198.51.100.10");
	s.proto = IPPROTO_TCP;
	s.sport = 40000;
	s.dport = 443;
	s.tcp_flags = flags;
	s.seq = 1000;
	s.payload_len = flags & FP_TCP_SYN ? 0 : 100;
	return s;
}

static int write_capture(const char *path, const struct fp_pkt_spec *specs, size_t n)
{
	pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
	pcap_dumper_t *d = dead ? pcap_dump_open(dead, path) : NULL;
	__u8 frame[FP_PKT_MAX];
	int err = 0;

	if (!d) {
		err = -EIO;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		int len = fp_pkt_build(&specs[i], frame, sizeof(frame));
		struct pcap_pkthdr h = { .ts = { (time_t)(1700000000 + i), 0 } };

		if (len < 0) {
			err = len;
			goto out;
		}
		h.caplen = h.len = (bpf_u_int32)len;
		pcap_dump((u_char *)d, &h, frame);
	}
out:
	if (d)
		pcap_dump_close(d);
	if (dead)
		pcap_close(dead);
	return err;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	FILE *fp;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/flowpin-replay-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->config, sizeof(f->config), "%s/lb.yaml", f->dir);
	snprintf(f->in, sizeof(f->in), "%s/in.pcap", f->dir);
	snprintf(f->out, sizeof(f->out), "%s/out.pcap", f->dir);
	fp = fopen(f->config, "w");
	if (!fp || fputs(config_yaml, fp) < 0 || fclose(fp))
		return -1;
	if (fp_config_load(f->config, &f->cfg, stderr))
		return -1;
	if (fp_test_flowpin_path(f->flowpin, sizeof(f->flowpin)))
		return -1;

	f->specs[0] = v4_flow(FP_TCP_SYN);
	f->specs[1] = v4_flow(FP_TCP_ACK);
	f->specs[2] = v4_flow(FP_TCP_ACK | FP_TCP_PSH);
	/* Not a VIP: the stack's. */
	f->specs[3] = v4_flow(FP_TCP_ACK);
	f->specs[3].dst = fp_pkt_addr("198.51.100.99");
	/* IPv6 VIP, IPv6 backends. */
	f->specs[4].src = fp_pkt_addr("2001:db8:200::7");
	f->specs[4].dst = fp_pkt_addr("2001:db8:100::10");
	f->specs[4].proto = IPPROTO_TCP;
	f->specs[4].sport = 50000;
	f->specs[4].dport = 443;
	f->specs[4].tcp_flags = FP_TCP_SYN;
	/*
	 * A router's "fragmentation needed" to the VIP about the backend's reply of the
	 * IPv4 flow (VIP:443 -> client:40000): must reach the flow's backend.
	 */
	{
		struct fp_pkt_spec reply = v4_flow(FP_TCP_ACK);
		__u8 frame[FP_PKT_MAX];

		reply.src = f->specs[0].dst;
		reply.dst = f->specs[0].src;
		reply.sport = 443;
		reply.dport = 40000;
		if (fp_pkt_build(&reply, frame, sizeof(frame)) < 0)
			return -1;
		memcpy(f->quoted, frame + fp_pkt_l3_offset(&reply), sizeof(f->quoted));
		f->specs[5].src = fp_pkt_addr("192.0.2.99");
		f->specs[5].dst = f->specs[0].dst;
		f->specs[5].proto = IPPROTO_ICMP;
		f->specs[5].icmp_type = 3;    /* destination unreachable */
		f->specs[5].icmp_code = 4;    /* fragmentation needed */
		f->specs[5].icmp_rest = 1400; /* next-hop MTU */
		f->specs[5].payload = f->quoted;
		f->specs[5].payload_len = sizeof(f->quoted);
	}
	if (write_capture(f->in, f->specs, N_PACKETS))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (!f)
		return 0;
	unlink(f->config);
	unlink(f->in);
	unlink(f->out);
	snprintf(f->out, sizeof(f->out), "%s/stderr", f->dir); /* run_flowpin's */
	unlink(f->out);
	rmdir(f->dir);
	fp_config_free(f->cfg);
	free(f);
	return 0;
}

/*
 * Runs `flowpin ARGS...`; stdout into @out (NUL-terminated), stderr into DIR/stderr.
 * Returns the exit status.
 */
static int run_flowpin(const struct fixture *f, char *out, size_t cap, const char *const args[])
{
	char quoted[2048];
	size_t used = 0;

	quoted[0] = 0;
	for (int i = 0; args[i]; i++) {
		used += (size_t)snprintf(quoted + used, sizeof(quoted) - used, " '%s'", args[i]);
		assert_true(used < sizeof(quoted));
	}
	return fp_test_sh(out, cap, "'%s'%s 2>%s/stderr", f->flowpin, quoted, f->dir);
}

/* The backend id the userspace Maglev table gives the flow of @s in VIP @vip. */
static __u32 expected_backend(const struct fp_config *cfg, const struct fp_vip_cfg *vip,
			      const struct fp_pkt_spec *s, __u64 *hash)
{
	struct fp_maglev_backend mb[8];
	__u16 table[TABLE_SIZE];
	struct fp_flow_key key;

	assert_true(vip->n_backends <= 8);
	for (size_t i = 0; i < vip->n_backends; i++) {
		mb[i].id = vip->backends[i].id;
		mb[i].weight = vip->backends[i].weight;
	}
	assert_int_equal(fp_maglev_build(mb, vip->n_backends, TABLE_SIZE, &cfg->hash_key, table),
			 0);
	fp_pkt_flow_key(s, 0, &key);
	*hash = fp_flow_hash(&cfg->hash_key, &key);
	return table[fp_hash_bucket(*hash, TABLE_SIZE)];
}

static const struct fp_backend_cfg *backend_by_id(const struct fp_vip_cfg *vip, __u32 id)
{
	for (size_t i = 0; i < vip->n_backends; i++)
		if (vip->backends[i].id == id)
			return &vip->backends[i];
	fail_msg("backend %u is not in VIP %s", id, vip->name);
	return NULL;
}

/* The frame an LB emits for packet @s to backend @b (one hop, generation 1). */
static int expected_frame(const struct fp_pkt_spec *s, const struct fp_backend_cfg *b, __u64 hash,
			  __u8 *buf, size_t cap)
{
	static const __u8 own_mac[6] = { 0x02, 0x66, 0x70, 0x00, 0x00, 0x01 };
	static const __u8 gw_mac[6] = { 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee };
	struct fp_encap_spec e = {};
	__u8 inner[FP_PKT_MAX];
	int len = fp_pkt_build(s, inner, sizeof(inner));
	size_t l3 = fp_pkt_l3_offset(s);

	assert_true(len > (int)l3);
	memcpy(e.dst_mac, gw_mac, 6);
	memcpy(e.src_mac, own_mac, 6);
	e.outer_src = fp_pkt_addr(fp_addr_v4(&b->addr) ? "192.0.2.1" : "2001:db8::1");
	e.hash = hash;
	e.encap_port = 6080;
	e.hop_count = 1;
	e.hops[0] = b->addr;
	e.generation = 1;
	return fp_pkt_encap(&e, inner + l3, (size_t)len - l3, buf, cap);
}

/* Reads the output capture: frame i into frames[i], its length into lens[i]. */
static size_t read_capture(const char *path, __u8 frames[][FP_PKT_MAX], int *lens, size_t max)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	pcap_t *p = pcap_open_offline(path, errbuf);
	struct pcap_pkthdr *h;
	const u_char *bytes;
	size_t n = 0;

	if (!p)
		fail_msg("%s: %s", path, errbuf);
	assert_int_equal(pcap_datalink(p), DLT_EN10MB);
	while (n < max && pcap_next_ex(p, &h, &bytes) == 1) {
		assert_true(h->caplen <= FP_PKT_MAX);
		memcpy(frames[n], bytes, h->caplen);
		lens[n++] = (int)h->caplen;
	}
	pcap_close(p);
	return n;
}

/* Line @number (1-based) of @text into @line. */
static void get_line(const char *text, int number, char *line, size_t cap)
{
	const char *s = text;

	for (int i = 1; i < number && s; i++) {
		s = strchr(s, '\n');
		if (s)
			s++;
	}
	assert_non_null(s);
	snprintf(line, cap, "%.*s", (int)strcspn(s, "\n"), s);
}

static int has_reason(const char *line, const char *name)
{
	const char *r = strstr(line, " reason=");
	char list[512];

	assert_non_null(r);
	snprintf(list, sizeof(list), ",%s,", r + 8);
	for (char *c = list; *c; c++)
		if (*c == ' ')
			*c = 0;
	strcat(list, ",");
	char needle[64];
	snprintf(needle, sizeof(needle), ",%s,", name);
	return strstr(list, needle) != NULL;
}

static void check_replay(void **state, const char *lb_state)
{
	struct fixture *f = *state;
	static __u8 got[N_PACKETS][FP_PKT_MAX];
	__u8 want[FP_PKT_MAX];
	int got_len[N_PACKETS];
	char out[8192], line[512], expect[512], addr[64];
	const struct fp_vip_cfg *web = &f->cfg->vips[0], *web6 = &f->cfg->vips[1];
	const char *const args[] = { "replay", "--config",	f->config, "--in",
				     f->in,    "--out",		f->out,	   "--lb-state",
				     lb_state, "--nexthop-mac", NEXT_HOP,  NULL };
	const struct fp_backend_cfg *b4, *b6;
	__u64 hash4, hash6;
	size_t n;

	if (geteuid() != 0) {
		print_message("# needs root (BPF_PROG_TEST_RUN, network namespace)\n");
		skip();
	}
	unlink(f->out);
	assert_int_equal(run_flowpin(f, out, sizeof(out), args), 0);

	b4 = backend_by_id(web, expected_backend(f->cfg, web, &f->specs[0], &hash4));
	b6 = backend_by_id(web6, expected_backend(f->cfg, web6, &f->specs[4], &hash6));

	/* Lines: verdict, VIP, backend, hop list, generation, reasons. */
	for (int i = 1; i <= 3; i++) {
		get_line(out, i, line, sizeof(line));
		snprintf(expect, sizeof(expect),
			 "%d TX vip=198.51.100.10:443/tcp backend=%u(%s) hops=%s gen=1 reason=", i,
			 b4->id, fp_addr_str(&b4->addr, addr, sizeof(addr)), addr);
		if (strncmp(line, expect, strlen(expect)))
			fail_msg("line %d: '%s', expected it to start with '%s'", i, line, expect);
		assert_true(has_reason(line, "tx"));
	}
	get_line(out, 1, line, sizeof(line));
	assert_true(has_reason(line, "miss_syn"));
	assert_false(has_reason(line, "session_insert")); /* full mode: a SYN inserts nothing */
	get_line(out, 2, line, sizeof(line));
	assert_true(has_reason(line, "miss_non_syn"));
	assert_true(has_reason(line, "probation_insert")); /* the first non-SYN packet */
	assert_false(has_reason(line, "session_insert"));
	/* The packet that tells fresh from keep: the flow's second non-SYN packet, which
	 * promotes the flow from probation only if the state was kept. */
	get_line(out, 3, line, sizeof(line));
	assert_true(has_reason(line, "miss_non_syn"));
	if (!strcmp(lb_state, "keep")) {
		assert_true(has_reason(line, "session_insert"));
		assert_false(has_reason(line, "probation_insert"));
	} else {
		assert_false(has_reason(line, "session_insert"));
		assert_true(has_reason(line, "probation_insert"));
	}
	get_line(out, 4, line, sizeof(line));
	assert_string_equal(line, "4 PASS vip=- backend=- hops=- gen=- reason=pass_not_vip");
	get_line(out, 5, line, sizeof(line));
	snprintf(expect, sizeof(expect),
		 "5 TX vip=[2001:db8:100::10]:443/tcp backend=%u(%s) hops=%s gen=1 reason=", b6->id,
		 fp_addr_str(&b6->addr, addr, sizeof(addr)), addr);
	if (strncmp(line, expect, strlen(expect)))
		fail_msg("line 5: '%s', expected it to start with '%s'", line, expect);

	get_line(out, 6, line, sizeof(line));
	snprintf(expect, sizeof(expect),
		 "6 TX vip=198.51.100.10/icmp backend=%u(%s) hops=%s gen=1 reason=", b4->id,
		 fp_addr_str(&b4->addr, addr, sizeof(addr)), addr);
	if (strncmp(line, expect, strlen(expect)))
		fail_msg("line 6: '%s', expected it to start with '%s'", line, expect);
	assert_true(has_reason(line, "icmp_routed"));

	/* The output capture: the five forwarded frames, byte for byte. */
	n = read_capture(f->out, got, got_len, N_PACKETS);
	assert_int_equal(n, 5);
	/* The ICMP error travels with its flow's hash (outer source port) and backend. */
	const int forwarded[5] = { 0, 1, 2, 4, 5 };
	for (int i = 0; i < 5; i++) {
		const struct fp_pkt_spec *s = &f->specs[forwarded[i]];
		int len = expected_frame(s, s == &f->specs[4] ? b6 : b4,
					 s == &f->specs[4] ? hash6 : hash4, want, sizeof(want));

		assert_true(len > 0);
		assert_int_equal(got_len[i], len);
		assert_memory_equal(got[i], want, (size_t)len);
	}
}

static void test_replay_fresh(void **state)
{
	check_replay(state, "fresh");
}

static void test_replay_keep(void **state)
{
	check_replay(state, "keep");
}

/* A capture cut short by its snap length is refused, naming the packet; no output. */
static void test_replay_truncated_capture(void **state)
{
	struct fixture *f = *state;
	char bad[128], out[4096], err[512] = "";
	__u8 frame[FP_PKT_MAX];
	struct fp_pkt_spec s = v4_flow(FP_TCP_ACK);
	int len = fp_pkt_build(&s, frame, sizeof(frame));
	const char *const args[] = { "replay", "--config", f->config, "--in",
				     bad,      "--out",	   f->out,    NULL };
	pcap_t *dead;
	pcap_dumper_t *d;
	FILE *e;

	if (geteuid() != 0) {
		print_message("# needs root\n");
		skip();
	}
	snprintf(bad, sizeof(bad), "%s/truncated.pcap", f->dir);
	dead = pcap_open_dead(DLT_EN10MB, 65535);
	d = pcap_dump_open(dead, bad);
	assert_non_null(d);
	for (int i = 0; i < 2; i++) {
		struct pcap_pkthdr h = { .caplen = (bpf_u_int32)(i ? 60 : len),
					 .len = (bpf_u_int32)len };
		pcap_dump((u_char *)d, &h, frame);
	}
	pcap_dump_close(d);
	pcap_close(dead);
	unlink(f->out);
	assert_int_equal(run_flowpin(f, out, sizeof(out), args), 1);
	assert_int_equal(access(f->out, F_OK), -1);
	snprintf(out, sizeof(out), "%s/stderr", f->dir);
	e = fopen(out, "r");
	assert_non_null(e);
	assert_true(fread(err, 1, sizeof(err) - 1, e) > 0);
	fclose(e);
	if (!strstr(err, "truncated.pcap: packet 2: only 60 of"))
		fail_msg("stderr does not name the packet: %s", err);
	unlink(bad);
}

static void test_replay_usage(void **state)
{
	struct fixture *f = *state;
	char out[4096];
	const char *const no_out[] = { "replay", "--config", f->config, "--in", f->in, NULL };
	const char *const bad_state[] = { "replay", "--config", f->config,    "--in",	   f->in,
					  "--out",  f->out,	"--lb-state", "sometimes", NULL };
	const char *const bad_mac[] = { "replay", "--config", f->config,       "--in",	   f->in,
					"--out",  f->out,     "--nexthop-mac", "02:aa:bb", NULL };

	assert_int_equal(run_flowpin(f, out, sizeof(out), no_out), 2);
	assert_int_equal(run_flowpin(f, out, sizeof(out), bad_state), 2);
	assert_int_equal(run_flowpin(f, out, sizeof(out), bad_mac), 2);
}

/* Reads DIR/stderr of the last run_flowpin into @buf. */
static void read_stderr(const struct fixture *f, char *buf, size_t cap)
{
	char path[128];
	FILE *e;
	size_t n;

	snprintf(path, sizeof(path), "%s/stderr", f->dir);
	e = fopen(path, "r");
	assert_non_null(e);
	n = fread(buf, 1, cap - 1, e);
	buf[n] = 0;
	fclose(e);
}

/*
 * A frame larger than BPF_PROG_TEST_RUN hands an XDP program whole
 * (about 3.5 KB) is refused, naming it, instead of replayed as a truncated drop; a
 * 3000-byte frame is replayed.
 */
static void test_replay_jumbo_frame(void **state)
{
	struct fixture *f = *state;
	struct fp_pkt_spec specs[2] = { v4_flow(FP_TCP_ACK), v4_flow(FP_TCP_ACK) };
	char big[128], out[4096], err[1024];
	const char *const args[] = { "replay", "--config", f->config, "--in",
				     big,      "--out",	   f->out,    NULL };

	if (geteuid() != 0) {
		print_message("# needs root\n");
		skip();
	}
	specs[0].payload_len = 3000 - 54;
	specs[1].payload_len = 5000 - 54;
	snprintf(big, sizeof(big), "%s/jumbo.pcap", f->dir);
	assert_int_equal(write_capture(big, specs, 2), 0);
	unlink(f->out);
	assert_int_equal(run_flowpin(f, out, sizeof(out), args), 1);
	assert_int_equal(access(f->out, F_OK), -1);
	read_stderr(f, err, sizeof(err));
	if (!strstr(err, "jumbo.pcap: packet 2: 5000 bytes;"))
		fail_msg("stderr does not name the frame: %s", err);
	/* Without the big one, the 3000-byte frame is decided by the program. */
	assert_int_equal(write_capture(big, specs, 1), 0);
	assert_int_equal(run_flowpin(f, out, sizeof(out), args), 0);
	if (!strncmp(out, "1 DROP", 6) && strstr(out, "drop_truncated"))
		fail_msg("a 3000-byte frame replayed as truncated: %s", out);
	unlink(big);
}

/*
 * Destination MACs (bpf/own_mac.h): the program acts only on frames to its device's
 * MAC. Replay gives every unicast frame of a capture the namespace device's MAC by
 * default (a capture taken on the node is replayed as sent to it); with --mac, frames
 * to another MAC keep theirs and are passed unread (pass_not_our_mac); a VIP packet in
 * a broadcast frame is dropped either way (drop_group_mac).
 */
static void test_replay_mac(void **state)
{
	struct fixture *f = *state;
	struct fp_pkt_spec specs[3] = { v4_flow(FP_TCP_SYN), v4_flow(FP_TCP_SYN),
					v4_flow(FP_TCP_SYN) };
	char in[128], out[4096], line[512];
	const char *const plain[] = { "replay", "--config", f->config, "--in",
				      in,	"--out",    f->out,    NULL };
	const char *const with_mac[] = { "replay", "--config", f->config,
					 "--in",   in,	       "--out",
					 f->out,   "--mac",    "02:66:70:00:00:99",
					 NULL };

	if (geteuid() != 0) {
		print_message("# needs root\n");
		skip();
	}
	memcpy(specs[0].dst_mac, "\x02\x11\x22\x33\x44\x55", 6); /* another host's */
	memcpy(specs[1].dst_mac, "\x02\x66\x70\x00\x00\x99", 6); /* the --mac one */
	memcpy(specs[2].dst_mac, "\xff\xff\xff\xff\xff\xff", 6);
	snprintf(in, sizeof(in), "%s/macs.pcap", f->dir);
	assert_int_equal(write_capture(in, specs, 3), 0);

	assert_int_equal(run_flowpin(f, out, sizeof(out), plain), 0);
	for (int i = 1; i <= 2; i++) {
		get_line(out, i, line, sizeof(line));
		if (strncmp(line + 2, "TX ", 3) || !has_reason(line, "miss_syn"))
			fail_msg("without --mac, line %d: '%s'", i, line);
	}
	get_line(out, 3, line, sizeof(line));
	if (strncmp(line, "3 DROP ", 7) || !has_reason(line, "drop_group_mac"))
		fail_msg("broadcast: '%s'", line);

	assert_int_equal(run_flowpin(f, out, sizeof(out), with_mac), 0);
	get_line(out, 1, line, sizeof(line));
	assert_string_equal(line, "1 PASS vip=198.51.100.10:443/tcp backend=- hops=- gen=- "
				  "reason=pass_not_our_mac");
	get_line(out, 2, line, sizeof(line));
	if (strncmp(line, "2 TX ", 5) || !has_reason(line, "miss_syn"))
		fail_msg("with --mac, the frame to that MAC: '%s'", line);
	get_line(out, 3, line, sizeof(line));
	if (strncmp(line, "3 DROP ", 7) || !has_reason(line, "drop_group_mac"))
		fail_msg("broadcast, with --mac: '%s'", line);
	unlink(in);
}

/* ---- replay --backend ---------------------------------------------------------------- */

static const char backend_yaml[] = "hash_key: 0f0e0d0c0b0a09080706050403020100\n"
				   "table_size: 307\n"
				   "encap_port: 6080\n"
				   "lb_sources:\n"
				   "  - 192.0.2.0/24\n"
				   "  - 2001:db8::/64\n"
				   "vips:\n"
				   "  - name: web\n"
				   "    address: 198.51.100.10\n"
				   "    port: 443\n"
				   "    protocol: tcp\n"
				   "    backends:\n"
				   "      - { id: 1, address: 10.20.0.1 }\n"
				   "      - { id: 2, address: 10.20.0.2 }\n"
				   "      - { id: 3, address: fd00:20::1 }\n";

/* The LB's frame for @s to hops [@hop0, @hop1] from @lb (wire.h), as the backend sees it. */
static int lb_frame(const struct fp_pkt_spec *s, const char *lb, const char *hop0, const char *hop1,
		    __u8 *buf, size_t cap)
{
	struct fp_encap_spec e = {};
	__u8 inner[FP_PKT_MAX];
	int len = fp_pkt_build(s, inner, sizeof(inner));
	size_t l3 = fp_pkt_l3_offset(s);

	assert_true(len > (int)l3);
	memcpy(e.dst_mac, "\x02\x20\x00\x00\x00\x01", 6);
	memcpy(e.src_mac, "\x02\x20\x00\x00\x00\xfe", 6);
	e.outer_src = fp_pkt_addr(lb);
	e.encap_port = 6080;
	e.hop_count = hop1 ? 2 : 1;
	e.hops[0] = fp_pkt_addr(hop0);
	if (hop1)
		e.hops[1] = fp_pkt_addr(hop1);
	e.generation = 1;
	return fp_pkt_encap(&e, inner + l3, (size_t)len - l3, buf, cap);
}

static void dump_frame(pcap_dumper_t *d, const __u8 *frame, int len, int i)
{
	struct pcap_pkthdr h = { .ts = { (time_t)(1700000000 + i), 0 } };

	assert_true(len > 0);
	h.caplen = h.len = (bpf_u_int32)(len < 60 ? 60 : len);
	pcap_dump((u_char *)d, &h, frame);
}

/*
 * The backend program over a capture: every verdict an operator needs to see, the
 * hardening regressions among them (an IPv4-mapped LB source, a
 * hop that is no backend, a frame to a broadcast MAC, the LB's probe), a --socket that
 * turns a forward into a delivery, and the frames written to --out.
 */
static void test_replay_backend(void **state)
{
	struct fixture *f = *state;
	static __u8 got[4][FP_PKT_MAX];
	__u8 frame[FP_PKT_MAX], probe[FP_PROBE_SIZE];
	int got_len[4], len;
	char config[128], in[128], out[8192], line[512];
	struct fp_pkt_spec s;
	const char *const args[] = { "replay",
				     "--backend",
				     "--config",
				     config,
				     "--in",
				     in,
				     "--out",
				     f->out,
				     "--self",
				     "10.20.0.1",
				     "--self",
				     "fd00:20::1",
				     "--socket",
				     "198.51.100.10:443-203.0.113.5:40000",
				     "--nexthop-mac",
				     NEXT_HOP,
				     NULL };
	static const char *const want[] = {
		"1 DELIVER vip=198.51.100.10:443/tcp client=203.0.113.7:40000 to=- "
		"reason=syn_local",
		"2 FORWARD vip=198.51.100.10:443/tcp client=203.0.113.7:40001 to=2(10.20.0.2) "
		"reason=forwarded",
		"3 DELIVER vip=198.51.100.10:443/tcp client=203.0.113.5:40000 to=- "
		"reason=established_local",
		"4 DROP vip=198.51.100.10:443/tcp client=203.0.113.7:40002 to=- reason=bad_hop",
		"5 DROP vip=198.51.100.10:443/tcp client=203.0.113.7:40003 to=- reason=bad_hop",
		"6 DROP vip=198.51.100.10:443/tcp client=203.0.113.7:40000 to=- "
		"reason=not_allowed",
		"7 DROP vip=198.51.100.10:443/tcp client=203.0.113.7:40000 to=- reason=not_local",
		"8 DROP vip=- client=- to=- reason=probe",
		"9 PASS vip=- client=- to=- reason=not_flowpin",
		"10 REFLECT vip=- client=- to=lb(192.0.2.10) reason=tunnel_probe",
	};
	pcap_t *dead;
	pcap_dumper_t *d;
	FILE *fp;

	if (geteuid() != 0) {
		print_message("# needs root (BPF_PROG_TEST_RUN, network namespace)\n");
		skip();
	}
	snprintf(config, sizeof(config), "%s/backend.yaml", f->dir);
	snprintf(in, sizeof(in), "%s/backend.pcap", f->dir);
	fp = fopen(config, "w");
	assert_non_null(fp);
	assert_true(fputs(backend_yaml, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	dead = pcap_open_dead(DLT_EN10MB, 65535);
	d = pcap_dump_open(dead, in);
	assert_non_null(d);

	s = v4_flow(FP_TCP_SYN); /* 1: a new flow */
	dump_frame(d, frame,
		   lb_frame(&s, "192.0.2.10", "10.20.0.1", "10.20.0.2", frame, sizeof(frame)), 1);
	s = v4_flow(FP_TCP_ACK); /* 2: no socket here: the previous owner's */
	s.sport = 40001;
	dump_frame(d, frame,
		   lb_frame(&s, "192.0.2.10", "10.20.0.1", "10.20.0.2", frame, sizeof(frame)), 2);
	s = v4_flow(FP_TCP_ACK); /* 3: the --socket's flow */
	s.src = fp_pkt_addr("203.0.113.5");
	dump_frame(d, frame,
		   lb_frame(&s, "192.0.2.10", "10.20.0.1", "10.20.0.2", frame, sizeof(frame)), 3);
	s = v4_flow(FP_TCP_ACK); /* 4, 5: hops that are no backend of the VIP (item 11) */
	s.sport = 40002;
	dump_frame(d, frame,
		   lb_frame(&s, "192.0.2.10", "10.20.0.1", "8.8.8.8", frame, sizeof(frame)), 4);
	s.sport = 40003;
	dump_frame(d, frame,
		   lb_frame(&s, "192.0.2.10", "10.20.0.1", "255.255.255.255", frame, sizeof(frame)),
		   5);
	s = v4_flow(FP_TCP_SYN); /* 6: IPv6 outer from ::ffff:192.0.2.10 (item 10) */
	len = lb_frame(&s, "2001:db8::10", "fd00:20::1", NULL, frame, sizeof(frame));
	assert_int_equal(inet_pton(AF_INET6, "::ffff:192.0.2.10", frame + 14 + 8), 1);
	dump_frame(d, frame, len, 6);
	len = lb_frame(&s, "192.0.2.10", "10.20.0.1", "10.20.0.2", frame, sizeof(frame));
	memset(frame, 0xff, 6); /* 7: a broadcast frame (item 11) */
	dump_frame(d, frame, len, 7);
	memset(&s, 0, sizeof(s)); /* 8: `lb up`'s neighbour probe (item 21) */
	s.src = fp_pkt_addr("192.0.2.10");
	s.dst = fp_pkt_addr("10.20.0.1");
	s.proto = IPPROTO_UDP;
	s.sport = 50000;
	s.dport = 6080;
	dump_frame(d, frame, fp_pkt_build(&s, frame, sizeof(frame)), 8);
	s = v4_flow(FP_TCP_ACK); /* 9: not encapsulated */
	dump_frame(d, frame, fp_pkt_build(&s, frame, sizeof(frame)), 9);
	memset(&s, 0, sizeof(s)); /* 10: an LB's tunnel health probe */
	s.src = fp_pkt_addr("192.0.2.10");
	s.dst = fp_pkt_addr("10.20.0.1");
	s.proto = IPPROTO_UDP;
	s.sport = 50001;
	s.dport = 6080;
	s.payload = probe;
	s.payload_len = fp_tunnel_probe_build(probe, sizeof(probe), 7);
	dump_frame(d, frame, fp_pkt_build(&s, frame, sizeof(frame)), 10);
	pcap_dump_close(d);
	pcap_close(dead);

	unlink(f->out);
	if (run_flowpin(f, out, sizeof(out), args) != 0) {
		read_stderr(f, line, sizeof(line));
		fail_msg("replay --backend failed: %s", line);
	}
	for (int i = 0; i < 10; i++) {
		get_line(out, i + 1, line, sizeof(line));
		assert_string_equal(line, want[i]);
	}
	/* --out: the two deliveries (decapsulated), the forward (readdressed), the reply. */
	assert_int_equal(read_capture(f->out, got, got_len, 4), 4);
	assert_memory_equal(got[3] + 14 + 16, "\xc0\x00\x02\x0a", 4); /* back to the LB */
	assert_int_equal(fp_tunnel_probe_check_reply(got[3] + 14 + 20 + 8, FP_PROBE_SIZE, 7), 0);
	assert_int_equal(got[0][12], 0x08);
	assert_int_equal(got[0][14 + 9], IPPROTO_TCP); /* the inner header, right after L2 */
	assert_memory_equal(got[1], "\x02\xaa\xbb\xcc\xdd\xee", 6);
	assert_memory_equal(got[1] + 14 + 16, "\x0a\x14\x00\x02", 4);
	unlink(config);
	unlink(in);
}

/* Backend-only options without --backend, LB-only ones with it, bad socket specs. */
static void test_replay_backend_usage(void **state)
{
	struct fixture *f = *state;
	char out[4096];
	const char *const no_self[] = { "replay", "--backend", "--config", f->config,
					"--in",	  f->in,       NULL };
	const char *const self_lb[] = { "replay", "--config", f->config, "--in",     f->in,
					"--out",  f->out,     "--self",	 "10.0.0.1", NULL };
	const char *const state_be[] = { "replay",     "--backend", "--config", f->config,
					 "--in",       f->in,	    "--self",	"10.0.0.1",
					 "--lb-state", "keep",	    NULL };
	const char *const bad_socket[] = {
		"replay", "--backend", "--config", f->config,  "--in",
		f->in,	  "--self",    "10.0.0.1", "--socket", "198.51.100.10:443-2001:db8::1:5",
		NULL
	};

	assert_int_equal(run_flowpin(f, out, sizeof(out), no_self), 2);
	assert_int_equal(run_flowpin(f, out, sizeof(out), self_lb), 2);
	assert_int_equal(run_flowpin(f, out, sizeof(out), state_be), 2);
	assert_int_equal(run_flowpin(f, out, sizeof(out), bad_socket), 2);
}

/*
 * QUIC-LB: a capture of QUIC packets to a plaintext IPv4 VIP and a
 * single-pass AES IPv6 VIP, CIDs from fp_quiclb_encode(): replay prints the server ID
 * lib/quiclb.c decodes (quic_sid=), and the backend the XDP program chose is the one
 * with that server ID, for every routable packet; unroutable ones print quic_sid=- and
 * their reason. The data plane and the userspace decoder must agree.
 */
static const char quic_yaml[] = "hash_key: 0f0e0d0c0b0a09080706050403020100\n"
				"table_size: 307\n"
				"encap_port: 6080\n"
				"vips:\n"
				"  - name: q4\n"
				"    address: 198.51.100.20\n"
				"    port: 443\n"
				"    protocol: udp\n"
				"    pinning: hash\n"
				"    quic_lb: { config_id: 2, server_id_len: 2, nonce_len: 5 }\n"
				"    backends:\n"
				"      - { id: 1, address: 10.20.0.1, server_id: \"0a01\" }\n"
				"      - { id: 2, address: 10.20.0.2, server_id: \"0a02\" }\n"
				"      - { id: 3, address: 10.20.0.3, server_id: \"0a03\" }\n"
				"  - name: q6\n"
				"    address: 2001:db8:100::20\n"
				"    port: 443\n"
				"    protocol: udp\n"
				"    pinning: hash\n"
				"    quic_lb: { config_id: 0, server_id_len: 4, nonce_len: 12,\n"
				"               key: 4d2ab5e1c1a0cd0d2e3f5a6b7c8d9e0f }\n"
				"    backends:\n"
				"      - { id: 5, address: fd00:20::5, server_id: \"c0ffee05\" }\n"
				"      - { id: 6, address: fd00:20::6, server_id: \"c0ffee06\" }\n";

#define QUIC_PACKETS 24

static void test_replay_quic_lb(void **state)
{
	struct fixture *f = *state;
	struct fp_pkt_spec specs[QUIC_PACKETS] = {};
	static __u8 payloads[QUIC_PACKETS][64];
	__u16 named[QUIC_PACKETS] = { 0 }; /* backend the CID names; 0: unroutable */
	char cfg_path[128], in[128], out_pcap[128], out[16384], line[512];
	struct fp_config *cfg = NULL;
	FILE *fp;

	if (geteuid() != 0) {
		print_message("# needs root (BPF_PROG_TEST_RUN, network namespace)\n");
		skip();
	}
	snprintf(cfg_path, sizeof(cfg_path), "%s/quic.yaml", f->dir);
	snprintf(in, sizeof(in), "%s/quic-in.pcap", f->dir);
	snprintf(out_pcap, sizeof(out_pcap), "%s/quic-out.pcap", f->dir);
	fp = fopen(cfg_path, "w");
	assert_non_null(fp);
	assert_true(fputs(quic_yaml, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(cfg_path, 0600), 0); /* it holds keys */
	assert_int_equal(fp_config_load(cfg_path, &cfg, stderr), 0);
	for (int i = 0; i < QUIC_PACKETS; i++) {
		const struct fp_vip_cfg *v = &cfg->vips[i % 2];
		const struct fp_backend_cfg *b = &v->backends[(i / 2) % v->n_backends];
		__u8 nonce[FP_QUICLB_MAX_NONCE], *p = payloads[i];
		size_t cid_len = 0, n = 0;
		int kind = i / 6; /* 0, 1: short header; 2: long v2 Initial; 3: unroutable */

		for (size_t k = 0; k < sizeof(nonce); k++)
			nonce[k] = (__u8)(i * 37 + k);
		p[n++] = kind >= 2 ? 0xd3 : 0x41;
		if (kind >= 2) {
			memcpy(p + n, "\x6b\x33\x43\xcf", 4); /* QUIC v2 */
			n += 4;
			p[n++] = (__u8)fp_quiclb_cid_len(&v->quic_lb);
		}
		assert_int_equal(
			fp_quiclb_encode(&v->quic_lb, b->server_id, nonce, p + n, &cid_len), 0);
		if (kind == 3)
			p[n] |= 0xe0; /* config 0b111: unroutable */
		else
			named[i] = (__u16)b->id;
		n += cid_len;
		memset(p + n, 0x77, sizeof(payloads[i]) - n);
		specs[i].src = fp_pkt_addr(i % 2 ? "2001:db8:200::7" : "203.0.113.7");
		specs[i].dst = v->addr;
		specs[i].proto = IPPROTO_UDP;
		specs[i].sport = (__u16)(30000 + i);
		specs[i].dport = 443;
		specs[i].payload = p;
		specs[i].payload_len = sizeof(payloads[i]);
	}
	assert_int_equal(write_capture(in, specs, QUIC_PACKETS), 0);
	{
		const char *const args[] = {
			"replay", "--config", cfg_path,	       "--in",	 in,
			"--out",  out_pcap,   "--nexthop-mac", NEXT_HOP, NULL
		};

		assert_int_equal(run_flowpin(f, out, sizeof(out), args), 0);
	}
	for (int i = 0; i < QUIC_PACKETS; i++) {
		const struct fp_vip_cfg *v = &cfg->vips[i % 2];
		char want[64];

		get_line(out, i + 1, line, sizeof(line));
		if (!named[i]) {
			if (!strstr(line, " quic_sid=- ") || !has_reason(line, "quic_lb_config"))
				fail_msg("packet %d: expected unroutable: %s", i + 1, line);
			continue;
		}
		snprintf(want, sizeof(want), " backend=%u(", named[i]);
		if (!strstr(line, want))
			fail_msg("packet %d: expected backend %u: %s", i + 1, named[i], line);
		strcpy(want, " quic_sid=");
		for (int k = 0; k < v->quic_lb.server_id_len; k++)
			snprintf(want + strlen(want), sizeof(want) - strlen(want), "%02x",
				 backend_by_id(v, named[i])->server_id[k]);
		strcat(want, " ");
		if (!strstr(line, want) || !has_reason(line, "quic_lb_hit"))
			fail_msg("packet %d: expected%s and quic_lb_hit: %s", i + 1, want, line);
	}
	fp_config_free(cfg);
	unlink(cfg_path);
	unlink(in);
	unlink(out_pcap);
}

/*
 * TCP tickets: replay prints what step 3 reads on a session miss, from the published
 * vectors (tests/common/ticket_vectors.h, computed by an independent model): the TSecr,
 * the server id it names, that backend's state and whether the miss goes there, and the
 * program's frame goes to that backend. Forged TSecr values (the vector's ticket with
 * low bits flipped) name an unknown, a down, a draining and another live backend; a
 * segment without the option, one with a malformed option, a SYN and a VIP without
 * tickets print what the program does with them.
 */
static const char ticket_yaml[] = "hash_key: 000102030405060708090a0b0c0d0e0f\n"
				  "allow_example_key: true\n"
				  "table_size: 401\n"
				  "encap_port: 6080\n"
				  "vips:\n"
				  "  - name: t443\n"
				  "    address: 198.51.100.10\n"
				  "    port: 443\n"
				  "    protocol: tcp\n"
				  "    pinning: full\n"
				  "    tickets: { bits: 8 }\n"
				  "    backends:\n"
				  "      - { id: 5, address: 10.20.0.5 }\n"
				  "      - { id: 6, address: 10.20.0.6 }\n"
				  "      - { id: 7, address: 10.20.0.7, state: down }\n"
				  "      - { id: 8, address: 10.20.0.8, state: draining }\n"
				  "  - name: t80\n"
				  "    address: 198.51.100.10\n"
				  "    port: 80\n"
				  "    protocol: tcp\n"
				  "    pinning: hash\n"
				  "    tickets: {}\n"
				  "    backends:\n"
				  "      - { id: 1, address: 10.20.1.1 }\n"
				  "      - { id: 255, address: 10.20.1.255 }\n"
				  "  - name: t6\n"
				  "    address: 2001:db8::10\n"
				  "    port: 443\n"
				  "    protocol: tcp\n"
				  "    pinning: full\n"
				  "    tickets: { bits: 12 }\n"
				  "    backends:\n"
				  "      - { id: 2, address: fd00:20::2 }\n"
				  "      - { id: 4095, address: fd00:20::fff }\n"
				  "  - name: plain\n"
				  "    address: 198.51.100.11\n"
				  "    port: 443\n"
				  "    protocol: tcp\n"
				  "    pinning: full\n"
				  "    backends:\n"
				  "      - { id: 1, address: 10.20.2.1 }\n";

#define TICKET_PACKETS 13

/*
 * The backend the VIP's table (its live backends: fp_maglev_build_vip()) gives the flow
 * of @s, and the flow hash into *@hash.
 */
static __u32 table_owner(const struct fp_config *cfg, const struct fp_vip_cfg *vip,
			 const struct fp_pkt_spec *s, __u64 *hash)
{
	__u16 table[1024];
	struct fp_flow_key key;

	assert_true(cfg->table_size <= 1024);
	assert_int_equal(fp_maglev_build_vip(cfg, vip, table), 0);
	fp_pkt_flow_key(s, 0, &key);
	*hash = fp_flow_hash(&cfg->hash_key, &key);
	return table[fp_hash_bucket(*hash, cfg->table_size)];
}

/* A segment of vector @v's flow, carrying @opts (@len bytes) as its TCP options. */
static struct fp_pkt_spec vector_segment(const struct fp_ticket_vector *v, const __u8 *opts,
					 __u8 len)
{
	struct fp_pkt_spec s = {};

	s.src = fp_pkt_addr(v->client);
	s.dst = fp_pkt_addr(v->vip);
	s.proto = IPPROTO_TCP;
	s.sport = v->client_port;
	s.dport = v->vip_port;
	s.tcp_flags = FP_TCP_ACK;
	s.seq = 1000;
	s.payload_len = 20;
	s.tcp_options = opts;
	s.tcp_options_len = len;
	return s;
}

/* NOP NOP TS(tsval 0x01020304, @tsecr), as Linux sends them, into @o. */
static void ts_option(__u8 o[12], __u32 tsecr)
{
	const __u8 v[12] = { 1,
			     1,
			     8,
			     10,
			     1,
			     2,
			     3,
			     4,
			     (__u8)(tsecr >> 24),
			     (__u8)(tsecr >> 16),
			     (__u8)(tsecr >> 8),
			     (__u8)tsecr };

	memcpy(o, v, sizeof(v));
}

static void test_replay_tcp_tickets(void **state)
{
	struct fixture *f = *state;
	const struct fp_ticket_vector *v0 = &fp_ticket_vectors[0], *v1 = &fp_ticket_vectors[1],
				      *v3 = &fp_ticket_vectors[3];
	static __u8 opts[TICKET_PACKETS][40];
	static __u8 got[TICKET_PACKETS][FP_PKT_MAX];
	struct fp_pkt_spec specs[TICKET_PACKETS];
	/* The backend each forwarded packet must reach (id; 0: the bucket's owner). */
	__u32 to[TICKET_PACKETS];
	char cfg_path[128], in[128], out_pcap[128], out[16384], line[512], want[512], addr[64];
	int got_len[TICKET_PACKETS];
	struct fp_config *cfg = NULL;
	const struct fp_vip_cfg *t443, *t80, *t6, *plain;
	__u32 own0, own_plain;
	__u64 hash;
	size_t n;
	FILE *fp;

	if (geteuid() != 0) {
		print_message("# needs root (BPF_PROG_TEST_RUN, network namespace)\n");
		skip();
	}
	/* The vectors this test is built on (bits and ports as the config says). */
	assert_int_equal(v0->bits, 8);
	assert_int_equal(v0->sid, 5);
	assert_int_equal(v1->bits, 8);
	assert_int_equal(v1->sid, 255);
	assert_int_equal(v3->bits, 12);
	assert_int_equal(v3->sid, 4095);
	snprintf(cfg_path, sizeof(cfg_path), "%s/ticket.yaml", f->dir);
	snprintf(in, sizeof(in), "%s/ticket-in.pcap", f->dir);
	snprintf(out_pcap, sizeof(out_pcap), "%s/ticket-out.pcap", f->dir);
	fp = fopen(cfg_path, "w");
	assert_non_null(fp);
	assert_true(fputs(ticket_yaml, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(cfg_path, 0600), 0); /* it holds the key */
	assert_int_equal(fp_config_load(cfg_path, &cfg, stderr), 0);
	t443 = &cfg->vips[0];
	t80 = &cfg->vips[1];
	t6 = &cfg->vips[2];
	plain = &cfg->vips[3];

	/* 1-3: the vectors' tickets, echoed: each names its backend. */
	ts_option(opts[0], v0->ticket);
	specs[0] = vector_segment(v0, opts[0], 12);
	to[0] = 5;
	ts_option(opts[1], v1->ticket);
	specs[1] = vector_segment(v1, opts[1], 12);
	to[1] = 255;
	ts_option(opts[2], v3->ticket);
	specs[2] = vector_segment(v3, opts[2], 12);
	to[2] = 4095;
	/* 4-7: forged, the low bits flipped: the id named is the vector's id ^ the flip. */
	for (int i = 0; i < 4; i++) {
		static const __u32 flip[4] = { 5 ^ 9, 5 ^ 7, 5 ^ 8, 5 ^ 6 };

		ts_option(opts[3 + i], v0->ticket ^ flip[i]);
		specs[3 + i] = vector_segment(v0, opts[3 + i], 12);
	}
	to[3] = to[4] = 0; /* unknown 9, down 7: the normal path */
	to[5] = 8;	   /* draining keeps its connections */
	to[6] = 6;	   /* another live backend: a forger's success */
	/* 8: no options at all. */
	specs[7] = vector_segment(v0, NULL, 0);
	to[7] = 0;
	/* 9: a timestamp option of length 8 (malformed): none read. */
	ts_option(opts[8], v0->ticket);
	opts[8][3] = 8;
	specs[8] = vector_segment(v0, opts[8], 12);
	to[8] = 0;
	/* 10: SACK-permitted, a SACK block and EOL padding around the ticket. */
	{
		const __u8 o[28] = { 4,
				     2,
				     5,
				     10,
				     0,
				     0,
				     0,
				     1,
				     0,
				     0,
				     0,
				     2,
				     1,
				     8,
				     10,
				     9,
				     9,
				     9,
				     9,
				     (__u8)(v0->ticket >> 24),
				     (__u8)(v0->ticket >> 16),
				     (__u8)(v0->ticket >> 8),
				     (__u8)v0->ticket,
				     0,
				     0,
				     0,
				     0,
				     0 };

		memcpy(opts[9], o, sizeof(o));
		specs[9] = vector_segment(v0, opts[9], 28);
		to[9] = 5;
	}
	/* 11: the SYN of the flow, timestamp option with TSecr 0. */
	ts_option(opts[10], 0);
	specs[10] = vector_segment(v0, opts[10], 12);
	specs[10].tcp_flags = FP_TCP_SYN;
	specs[10].payload_len = 0;
	to[10] = 0;
	/* 12: a VIP without tickets: nothing read, nothing printed. */
	ts_option(opts[11], v0->ticket);
	specs[11] = vector_segment(v0, opts[11], 12);
	specs[11].dst = plain->addr;
	to[11] = 1;
	/* 13: a ticket of another flow (vector 0's, on vector 0's VIP, another client port). */
	ts_option(opts[12], v0->ticket);
	specs[12] = vector_segment(v0, opts[12], 12);
	specs[12].sport = (__u16)(v0->client_port + 1);
	to[12] = 0; /* checked below: whatever id it names, the line says which */
	assert_int_equal(write_capture(in, specs, TICKET_PACKETS), 0);
	{
		const char *const args[] = {
			"replay", "--config", cfg_path,	       "--in",	 in,
			"--out",  out_pcap,   "--nexthop-mac", NEXT_HOP, NULL
		};

		if (run_flowpin(f, out, sizeof(out), args) != 0) {
			read_stderr(f, line, sizeof(line));
			fail_msg("replay failed: %s", line);
		}
	}
	own0 = table_owner(cfg, t443, &specs[7], &hash);
	own_plain = table_owner(cfg, plain, &specs[11], &hash);
	assert_int_equal(own_plain, 1);

	{
		char b[8][256];
		const struct fp_backend_cfg *own = backend_by_id(t443, own0);
		const char *own_addr = fp_addr_str(&own->addr, addr, sizeof(addr));
		const char *const wants[TICKET_PACKETS] = {
			"1 TX vip=198.51.100.10:443/tcp backend=5(10.20.0.5) hops=10.20.0.5 gen=1 "
			"tsecr=a2ecfd8b ticket=5(active) step3=take "
			"reason=tx,miss_non_syn,probation_insert,ticket_hit",
			"2 TX vip=198.51.100.10:80/tcp backend=255(10.20.1.255) hops=10.20.1.255 "
			"gen=1 tsecr=9bb8cd05 ticket=255(active) step3=take "
			"reason=tx,miss_non_syn,ticket_hit",
			"3 TX vip=[2001:db8::10]:443/tcp backend=4095(fd00:20::fff) "
			"hops=fd00:20::fff gen=1 tsecr=bddeb105 ticket=4095(active) step3=take "
			"reason=tx,miss_non_syn,probation_insert,ticket_hit",
			b[0],
			b[1],
			"6 TX vip=198.51.100.10:443/tcp backend=8(10.20.0.8) hops=10.20.0.8 gen=1 "
			"tsecr=a2ecfd86 ticket=8(draining) step3=take "
			"reason=tx,miss_non_syn,probation_insert,ticket_hit",
			"7 TX vip=198.51.100.10:443/tcp backend=6(10.20.0.6) hops=10.20.0.6 gen=1 "
			"tsecr=a2ecfd88 ticket=6(active) step3=take "
			"reason=tx,miss_non_syn,probation_insert,ticket_hit",
			b[2],
			b[3],
			"10 TX vip=198.51.100.10:443/tcp backend=5(10.20.0.5) hops=10.20.0.5 gen=1 "
			"tsecr=a2ecfd8b ticket=5(active) step3=take "
			"reason=tx,miss_non_syn,probation_insert,ticket_hit",
			b[4],
			"12 TX vip=198.51.100.11:443/tcp backend=1(10.20.2.1) hops=10.20.2.1 gen=1 "
			"reason=tx,miss_non_syn,probation_insert",
			NULL,
		};

		snprintf(b[0], sizeof(b[0]),
			 "4 TX vip=198.51.100.10:443/tcp backend=%u(%s) hops=%s gen=1 "
			 "tsecr=a2ecfd87 ticket=9(unknown) step3=no "
			 "reason=tx,miss_non_syn,probation_insert,ticket_invalid",
			 own0, own_addr, own_addr);
		snprintf(b[1], sizeof(b[1]),
			 "5 TX vip=198.51.100.10:443/tcp backend=%u(%s) hops=%s gen=1 "
			 "tsecr=a2ecfd89 ticket=7(down) step3=no "
			 "reason=tx,miss_non_syn,probation_insert,ticket_invalid",
			 own0, own_addr, own_addr);
		for (int i = 0; i < 2; i++)
			snprintf(b[2 + i], sizeof(b[2 + i]),
				 "%d TX vip=198.51.100.10:443/tcp backend=%u(%s) hops=%s gen=1 "
				 "ticket=no_timestamp "
				 "reason=tx,miss_non_syn,probation_insert,ticket_no_timestamp",
				 8 + i, own0, own_addr, own_addr);
		snprintf(b[4], sizeof(b[4]),
			 "11 TX vip=198.51.100.10:443/tcp backend=%u(%s) hops=%s gen=1 "
			 "ticket=syn reason=tx,miss_syn",
			 own0, own_addr, own_addr);
		for (int i = 0; i < TICKET_PACKETS - 1; i++) {
			get_line(out, i + 1, line, sizeof(line));
			assert_string_equal(line, wants[i]);
		}
	}
	/*
	 * 13: another flow's ticket names some id at random (the decode is keyed by the
	 * 5-tuple): whatever it names, the line and the program agree.
	 */
	get_line(out, 13, line, sizeof(line));
	{
		unsigned int named = 0;
		char state_name[16] = "";
		const char *t = strstr(line, " ticket=");

		assert_non_null(t);
		assert_int_equal(sscanf(t, " ticket=%u(%15[a-z])", &named, state_name), 2);
		assert_int_not_equal(named, 5); /* vector 0's flow hash is not this flow's */
		snprintf(want, sizeof(want), "13 TX vip=198.51.100.10:443/tcp backend=");
		assert_memory_equal(line, want, strlen(want));
		if (strstr(line, "step3=take")) {
			assert_true(has_reason(line, "ticket_hit"));
			to[12] = named;
		} else {
			assert_true(has_reason(line, "ticket_invalid"));
		}
	}
	/* The output capture: every packet forwarded, byte for byte to its backend. */
	n = read_capture(out_pcap, got, got_len, TICKET_PACKETS);
	assert_int_equal(n, TICKET_PACKETS);
	for (size_t i = 0; i < n; i++) {
		const struct fp_vip_cfg *v = i == 1 ? t80 : i == 2 ? t6 : i == 11 ? plain : t443;
		__u32 owner = table_owner(cfg, v, &specs[i], &hash);
		__u8 frame[FP_PKT_MAX];
		int len = expected_frame(&specs[i], backend_by_id(v, to[i] ? to[i] : owner), hash,
					 frame, sizeof(frame));

		assert_true(len > 0);
		assert_int_equal(got_len[i], len);
		if (memcmp(got[i], frame, (size_t)len))
			fail_msg("packet %zu: not the frame for backend %u", i + 1,
				 to[i] ? to[i] : owner);
	}
	fp_config_free(cfg);
	unlink(cfg_path);
	unlink(in);
	unlink(out_pcap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_fresh),
		cmocka_unit_test(test_replay_keep),
		cmocka_unit_test(test_replay_truncated_capture),
		cmocka_unit_test(test_replay_usage),
		cmocka_unit_test(test_replay_jumbo_frame),
		cmocka_unit_test(test_replay_mac),
		cmocka_unit_test(test_replay_backend),
		cmocka_unit_test(test_replay_backend_usage),
		cmocka_unit_test(test_replay_quic_lb),
		cmocka_unit_test(test_replay_tcp_tickets),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
