// SPDX-License-Identifier: MIT
/*
 * Config loading: a full valid file, defaults, and for every field its bad values, each
 * checked by the exact "FILE:LINE: FIELD: message" text an operator would see. A bad
 * file must give an error and no config.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <cmocka.h>
#include <flowpin/announce.h>
#include <flowpin/config.h>
#include <flowpin/maglev.h>

static char tmpdir[] = "/tmp/flowpin-test-config.XXXXXX";

static int setup(void **state)
{
	(void)state;
	/* Files only the owner reads: the loader warns about others (test_key_file_mode). */
	umask(077);
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Writes @text to a file in the test directory; returns its path (static buffer). */
static const char *write_file(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

struct load_result {
	int ret;
	struct fp_config *cfg;
	char *errors; /* everything printed to the error stream */
	size_t errors_len;
};

static void load(const char *path, struct load_result *r)
{
	FILE *err = open_memstream(&r->errors, &r->errors_len);

	assert_non_null(err);
	r->cfg = (struct fp_config *)(uintptr_t)1; /* must be overwritten */
	r->ret = fp_config_load(path, &r->cfg, err);
	fclose(err);
}

static void result_free(struct load_result *r)
{
	fp_config_free(r->cfg);
	free(r->errors);
}

/* A complete valid file; the error cases below are small edits of it. */
#define VALID_HEAD                                                  \
	"hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\n" /* line 1 */ \
	"vips:\n"				       /* line 2 */ \
	"  - name: web\n"			       /* line 3 */ \
	"    address: 198.51.100.10\n"		       /* line 4 */ \
	"    port: 443\n"			       /* line 5 */ \
	"    protocol: tcp\n"			       /* line 6 */ \
	"    backends:\n"			       /* line 7 */ \
	"      - id: 1\n"			       /* line 8 */ \
	"        address: 10.20.0.1\n"		       /* line 9 */

/*
 * Loads @text and checks that it fails with -EINVAL, no config, and that every line in
 * @expected (each "LINE: FIELD: message", without the file name) was printed, prefixed
 * with the file's path, and nothing else.
 */
static void expect_errors(const char *text, const char *const *expected, size_t n)
{
	const char *path = write_file("bad.yaml", text);
	struct load_result r;
	size_t lines = 0;

	load(path, &r);
	for (size_t i = 0; i < n; i++) {
		char want[512];

		snprintf(want, sizeof(want), "%s:%s\n", path, expected[i]);
		if (!strstr(r.errors, want))
			fail_msg("expected error\n  %s\ngot:\n%s", want, r.errors);
	}
	for (const char *p = r.errors; *p; p++)
		lines += *p == '\n';
	if (lines != n)
		fail_msg("expected %zu error lines, got %zu:\n%s", n, lines, r.errors);
	assert_int_equal(r.ret, -EINVAL);
	assert_null(r.cfg);
	result_free(&r);
}

#define EXPECT(text, ...)                                                     \
	do {                                                                  \
		static const char *const want_[] = { __VA_ARGS__ };           \
		expect_errors(text, want_, sizeof(want_) / sizeof(want_[0])); \
	} while (0)

static void test_valid_full_file(void **state)
{
	const char *text =
		"hash_key: 00112233445566778899AABBCCDDEEFF\n"
		"table_size: 655373\n"
		"encap_port: 7000\n"
		"timeouts:\n"
		"  tcp_established: 3600\n"
		"  tcp_transitory: 10\n"
		"  udp: 60\n"
		"lb_sources: [10.10.0.0/24, 'fd00:10::/64', 192.0.2.250, '2001:db8::1']\n"
		"vips:\n"
		"  - name: web\n"
		"    address: 198.51.100.10\n"
		"    port: 443\n"
		"    protocol: tcp\n"
		"    pinning: hash+table\n"
		"    backends:\n"
		"      - {id: 4095, address: 'fd00:20::1', weight: 65535, state: draining}\n"
		"      - {id: 1, address: 10.20.0.1, weight: 1, state: down}\n"
		"  - name: all-udp\n"
		"    address: 2001:db8::53\n"
		"    port: all\n"
		"    protocol: udp\n"
		"    pinning: none\n"
		"    hash: addresses\n"
		"    backends:\n"
		"      - id: 7\n"
		"        address: 10.20.0.7\n"
		"table_construction: rendezvous-v1\n"
		"share_tolerance: 5\n";
	struct load_result r;
	char buf[64];

	(void)state;
	load(write_file("full.yaml", text), &r);
	if (r.ret)
		fail_msg("valid file rejected: %s", r.errors);
	assert_string_equal(r.errors, "");
	assert_int_equal(r.cfg->hash_key.k0, 0x7766554433221100ULL);
	assert_int_equal(r.cfg->hash_key.k1, 0xffeeddccbbaa9988ULL);
	assert_int_equal(r.cfg->table_size, 655373);
	assert_int_equal(r.cfg->share_tolerance, 5);
	assert_int_equal(r.cfg->encap_port, 7000);
	assert_int_equal(r.cfg->timeouts.tcp_established, 3600);
	assert_int_equal(r.cfg->timeouts.tcp_transitory, 10);
	assert_int_equal(r.cfg->timeouts.udp, 60);
	assert_int_equal(r.cfg->n_lb_sources, 4);
	assert_int_equal(r.cfg->lb_sources[0].len, 96 + 24);
	assert_string_equal(fp_addr_str(&r.cfg->lb_sources[0].addr, buf, sizeof(buf)), "10.10.0.0");
	assert_int_equal(r.cfg->lb_sources[1].len, 64);
	assert_int_equal(r.cfg->lb_sources[2].len, 128); /* bare IPv4: host prefix */
	assert_int_equal(r.cfg->lb_sources[3].len, 128);
	assert_int_equal(r.cfg->n_vips, 2);
	const struct fp_vip_cfg *web = &r.cfg->vips[0], *dns = &r.cfg->vips[1];

	assert_string_equal(web->name, "web");
	assert_true(fp_addr_v4(&web->addr));
	assert_string_equal(fp_addr_str(&web->addr, buf, sizeof(buf)), "198.51.100.10");
	assert_int_equal(web->port, 443);
	assert_int_equal(web->proto, IPPROTO_TCP);
	assert_int_equal(web->pinning, FP_PIN_HASH_TABLE);
	assert_false(web->hash_addresses_only);
	assert_int_equal(web->line, 10);
	assert_int_equal(web->n_backends, 2);
	/* An IPv6 backend behind an IPv4 VIP is allowed. */
	assert_int_equal(web->backends[0].id, 4095);
	assert_false(fp_addr_v4(&web->backends[0].addr));
	assert_string_equal(fp_addr_str(&web->backends[0].addr, buf, sizeof(buf)), "fd00:20::1");
	assert_int_equal(web->backends[0].weight, 65535);
	assert_int_equal(web->backends[0].state, FP_BACKEND_DRAINING);
	assert_int_equal(web->backends[0].line, 16);
	assert_int_equal(web->backends[1].weight, 1);
	assert_int_equal(web->backends[1].state, FP_BACKEND_DOWN);
	assert_string_equal(dns->name, "all-udp");
	assert_int_equal(dns->port, 0);
	assert_int_equal(dns->proto, IPPROTO_UDP);
	assert_int_equal(dns->pinning, FP_PIN_NONE);
	assert_true(dns->hash_addresses_only);
	assert_string_equal(r.cfg->path, write_file("full.yaml", text));
	result_free(&r);
}

static void test_defaults(void **state)
{
	struct load_result r;

	(void)state;
	load(write_file("min.yaml", VALID_HEAD), &r);
	if (r.ret)
		fail_msg("minimal file rejected: %s", r.errors);
	assert_int_equal(r.cfg->share_tolerance, 1);
	assert_int_equal(r.cfg->table_size, 65537);
	assert_int_equal(r.cfg->encap_port, 6080);
	assert_int_equal(r.cfg->timeouts.tcp_established, 7200);
	assert_int_equal(r.cfg->timeouts.tcp_transitory, 30);
	assert_int_equal(r.cfg->timeouts.udp, 300);
	assert_int_equal(r.cfg->sessions.entries, 262144);
	assert_int_equal(r.cfg->sessions.new_flow_rate, 100000);
	assert_int_equal(r.cfg->n_lb_sources, 0);
	assert_int_equal(r.cfg->vips[0].pinning, FP_PIN_FULL);
	assert_false(r.cfg->vips[0].hash_addresses_only);
	assert_int_equal(r.cfg->vips[0].backends[0].weight, 100);
	assert_int_equal(r.cfg->vips[0].backends[0].state, FP_BACKEND_ACTIVE);
	result_free(&r);
}

/* The example file with "allow_example_key: true" added (a test may use its key). */
static char *example_allowed(void)
{
	FILE *f = fopen("examples/flowpin.yaml", "r"); /* the runner starts in the repo root */
	char *text = calloc(1, 16384);
	size_t len;

	assert_non_null(f);
	assert_non_null(text);
	len = fread(text, 1, 16000, f);
	fclose(f);
	assert_true(len > 100);
	strcat(text, "allow_example_key: true\n");
	return text;
}

/* Valid but for its published key, which an LB node refuses unless the file allows it. */
static void test_example_file_is_valid(void **state)
{
	struct load_result r;
	char *text = example_allowed();

	(void)state;
	load(write_file("example.yaml", text), &r);
	if (r.ret)
		fail_msg("examples/flowpin.yaml rejected (%d): %s", r.ret, r.errors);
	assert_int_equal(r.cfg->n_vips, 3);
	result_free(&r);
	free(text);

	load("examples/flowpin.yaml", &r);
	assert_int_equal(r.ret, -EINVAL);
	assert_null(r.cfg);
	assert_non_null(strstr(r.errors, "examples/flowpin.yaml:16: hash_key: is a key "
					 "published with flowpin"));
	result_free(&r);
}

static void test_top_level_errors(void **state)
{
	(void)state;
	EXPECT("vips:\n  - name: x\n    address: 192.0.2.1\n    port: 1\n    protocol: udp\n"
	       "    backends: [{id: 1, address: 10.0.0.1}]\n",
	       "1: hash_key: missing (required)");
	EXPECT("hash_key: 0011\n"
	       "vips: []\n",
	       "1: hash_key: must be 32 hex digits (128 bits), got '0011' (4 characters)",
	       "2: vips: empty: at least one VIP is needed");
	EXPECT("hash_key: 000102030405060708090a0b0c0d0e0g\nvips: 3\n",
	       "1: hash_key: must be 32 hex digits (128 bits), got "
	       "'000102030405060708090a0b0c0d0e0g' (32 characters)",
	       "2: vips: must be a list of VIPs");
	EXPECT("hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\n", "1: vips: missing (required)");
	EXPECT(VALID_HEAD "table_size: 65536\n",
	       "10: table_size: must be prime, got 65536 (next prime: 65537)");
	EXPECT(VALID_HEAD "table_size: 2\n", "10: table_size: must be 3..16777213, got 2");
	EXPECT(VALID_HEAD "table_size: 16777259\n",
	       "10: table_size: must be 3..16777213, got 16777259");
	EXPECT(VALID_HEAD "table_size: 0x10001\n",
	       "10: table_size: must be 3..16777213, got '0x10001'");
	EXPECT(VALID_HEAD "table_size: 97\n",
	       "10: table_size: 97 is less than 100 x 1 backends of vips[0] (web); use a prime >= "
	       "100, e.g. 101");
	/* One construction: the field makes binaries that build other tables refuse. */
	EXPECT(VALID_HEAD "table_construction: maglev\n",
	       "10: table_construction: must be rendezvous-v1, got 'maglev' (this flowpin builds "
	       "no Maglev tables; every node of a fleet must build the same ones)");
	EXPECT(VALID_HEAD "table_construction: rendezvous-v2\n",
	       "10: table_construction: must be rendezvous-v1, got 'rendezvous-v2'");
	EXPECT(VALID_HEAD "table_construction: [rendezvous-v1]\n",
	       "10: table_construction: must be a word, got a list");
	EXPECT(VALID_HEAD "share_tolerance: 51\n", "10: share_tolerance: must be 0..50, got 51");
	EXPECT(VALID_HEAD "share_tolerance: 1.5\n",
	       "10: share_tolerance: must be 0..50, got '1.5'");
	EXPECT(VALID_HEAD "encap_port: 0\n", "10: encap_port: must be 1..65535, got 0");
	EXPECT(VALID_HEAD "encap_port: 65536\n", "10: encap_port: must be 1..65535, got 65536");
	EXPECT(VALID_HEAD "encap_port: -1\n", "10: encap_port: must be 1..65535, got '-1'");
	EXPECT(VALID_HEAD "encap_port:\n", "10: encap_port: must be 1..65535, got ''");
	EXPECT(VALID_HEAD "encap_port: [1]\n", "10: encap_port: must be an integer, got a list");
	EXPECT(VALID_HEAD "colour: blue\n",
	       "10: colour: unknown key (known: hash_key, allow_example_key, table_size, "
	       "encap_port, timeouts, lb_sources, vips, health, bgp, sessions, "
	       "table_construction, share_tolerance, pops)");
	EXPECT(VALID_HEAD "hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\n",
	       "10: hash_key: duplicate key (first at line 1)");
	EXPECT("- 1\n- 2\n", "1: (top level): must be a mapping (key: value lines), got a list");
	EXPECT(VALID_HEAD "[a]: 1\n", "10: (top level): keys must be plain names");
}

static void test_timeouts_and_sources(void **state)
{
	(void)state;
	EXPECT(VALID_HEAD "timeouts:\n  tcp_established: 0\n  udp: 31536001\n  tcp_transitory: x\n"
			  "  icmp: 5\n",
	       "11: timeouts.tcp_established: must be 1..31536000, got 0",
	       "12: timeouts.udp: must be 1..31536000, got 31536001",
	       "13: timeouts.tcp_transitory: must be 1..31536000, got 'x'",
	       "14: timeouts.icmp: unknown key (known: tcp_established, tcp_transitory, udp)");
	EXPECT(VALID_HEAD "timeouts: 30\n",
	       "10: timeouts: must be a mapping (key: value lines), got a scalar");
	EXPECT(VALID_HEAD "lb_sources:\n  - 10.0.0.1/24\n  - fd00::/129\n  - 10.0.0.0/33\n"
			  "  - banana\n  - 10.0.0.0/\n  - {a: 1}\n",
	       "11: lb_sources[0]: '10.0.0.1/24' has bits set after the prefix length (host bits)",
	       "12: lb_sources[1]: prefix length must be 0..128, got 'fd00::/129'",
	       "13: lb_sources[2]: prefix length must be 0..32, got '10.0.0.0/33'",
	       "14: lb_sources[3]: not an address or ADDRESS/LENGTH prefix: 'banana'",
	       "15: lb_sources[4]: not an address or ADDRESS/LENGTH prefix: '10.0.0.0/'",
	       "16: lb_sources[5]: must be an address prefix, got a mapping");
	EXPECT(VALID_HEAD "lb_sources: 10.0.0.0/8\n", "10: lb_sources: must be a list of prefixes");
}

#define VIP_HEAD    "hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\nvips:\n"
#define ONE_BACKEND "    backends: [{id: 1, address: 10.0.0.1}]\n"

static void test_vip_errors(void **state)
{
	(void)state;
	EXPECT(VIP_HEAD "  - name: web\n", /* line 3 */
	       "3: vips[0].address: missing (required)", "3: vips[0].port: missing (required)",
	       "3: vips[0].protocol: missing (required)",
	       "3: vips[0].backends: missing (required)");
	EXPECT(VIP_HEAD "  - address: 192.0.2.1\n    port: 80\n    protocol: tcp\n" ONE_BACKEND,
	       "3: vips[0].name: missing (required)");
	EXPECT(VIP_HEAD "  - name: a b\n    address: 192.0.2.1\n    port: 80\n    protocol: "
			"tcp\n" ONE_BACKEND,
	       "3: vips[0].name: must be 1..63 characters of A-Z a-z 0-9 . _ -, got 'a b'");
	EXPECT(VIP_HEAD "  - name: web\n    address: 192.0.2.300\n    port: 80\n    protocol: "
			"tcp\n" ONE_BACKEND,
	       "4: vips[0].address: not an IPv4 or IPv6 address: '192.0.2.300'");
	EXPECT(VIP_HEAD "  - name: web\n    address: 224.0.0.1\n    port: 80\n    protocol: "
			"tcp\n" ONE_BACKEND,
	       "4: vips[0].address: must be a unicast address, got '224.0.0.1'");
	EXPECT(VIP_HEAD
	       "  - name: web\n    address: '::'\n    port: 80\n    protocol: tcp\n" ONE_BACKEND,
	       "4: vips[0].address: must be a unicast address, got '::'");
	/* Addresses no other host can send to or receive from: never a VIP or a backend. */
	EXPECT(VIP_HEAD "  - name: web\n    address: 255.255.255.255\n    port: 80\n"
			"    protocol: tcp\n" ONE_BACKEND,
	       "4: vips[0].address: must be a unicast address, got '255.255.255.255'");
	EXPECT(VIP_HEAD "  - name: web\n    address: 127.0.0.1\n    port: 80\n    protocol: tcp\n"
			"    backends:\n"
			"      - {id: 1, address: '::1'}\n"	 /* 8 */
			"      - {id: 2, address: 127.1.2.3}\n"	 /* 9 */
			"      - {id: 3, address: 'fe80::1'}\n", /* 10 */
	       "4: vips[0].address: '127.0.0.1' is a loopback address: no other host reaches it",
	       "8: vips[0].backends[0].address: '::1' is a loopback address: no other host "
	       "reaches it",
	       "9: vips[0].backends[1].address: '127.1.2.3' is a loopback address: no other host "
	       "reaches it",
	       "10: vips[0].backends[2].address: 'fe80::1' is link-local: the config cannot say "
	       "on which link");
	EXPECT(VIP_HEAD "  - name: web\n    address: 192.0.2.1\n    port: 65536\n"
			"    protocol: tcp\n" ONE_BACKEND,
	       "5: vips[0].port: must be 0..65535, got 65536");
	EXPECT(VIP_HEAD "  - name: web\n    address: 192.0.2.1\n    port: any\n"
			"    protocol: tcp\n" ONE_BACKEND,
	       "5: vips[0].port: must be 0..65535, got 'any'");
	EXPECT(VIP_HEAD "  - name: web\n    address: 192.0.2.1\n    port: 80\n    protocol: TCP\n"
			"    pinning: sticky\n    hash: 3-tuple\n" ONE_BACKEND,
	       "6: vips[0].protocol: must be tcp or udp, got 'TCP'",
	       "7: vips[0].pinning: must be none, table, hash, hash+table or full, got 'sticky'",
	       "8: vips[0].hash: must be 5-tuple or addresses, got '3-tuple'");
	EXPECT(VIP_HEAD "  - name: web\n    address: 192.0.2.1\n    port: 80\n    protocol: tcp\n"
			"    hash: addresses\n" ONE_BACKEND,
	       "7: vips[0].hash: 'addresses' is only allowed with port 0 (all ports), port is 80");
	EXPECT(VIP_HEAD "  - name: web\n    address: 192.0.2.1\n    port: 80\n    protocol: tcp\n"
			"    backends: []\n",
	       "7: vips[0].backends: empty: a VIP needs at least one backend");
	EXPECT(VIP_HEAD "  - name: web\n    address: 192.0.2.1\n    port: 80\n    protocol: tcp\n"
			"    backends: {id: 1}\n",
	       "7: vips[0].backends: must be a list of backends");
	EXPECT(VIP_HEAD "  - name: web\n    address: 192.0.2.1\n    port: 80\n    protocol: tcp\n"
			"    weight: 5\n" ONE_BACKEND,
	       "7: vips[0].weight: unknown key (known: name, address, port, protocol, pinning, "
	       "hash, backends, health, tickets, quic_lb)");
	EXPECT(VIP_HEAD "  - 192.0.2.1\n",
	       "3: vips[0]: must be a mapping (key: value lines), got a scalar");
}

static void test_duplicate_vips(void **state)
{
	(void)state;
	/* Same address, port and protocol: one of them could never get a packet. */
	EXPECT(VIP_HEAD
	       "  - name: a\n    address: 192.0.2.1\n    port: 80\n    protocol: tcp\n" ONE_BACKEND
	       "  - name: b\n    address: 192.0.2.1\n    port: 80\n"
	       "    protocol: tcp\n" ONE_BACKEND,
	       "8: vips[1]: duplicate VIP 192.0.2.1 port 80/tcp (also vips[0], line 3)");
	EXPECT(VIP_HEAD
	       "  - name: a\n    address: 192.0.2.1\n    port: 80\n    protocol: tcp\n" ONE_BACKEND
	       "  - name: a\n    address: 192.0.2.1\n    port: 80\n"
	       "    protocol: udp\n" ONE_BACKEND,
	       "8: vips[1].name: duplicate name 'a' (also vips[0], line 3)");
	/* Same address with another protocol or port is a different VIP. */
	const char *ok = VIP_HEAD "  - name: a\n    address: 192.0.2.1\n    port: 80\n"
				  "    protocol: tcp\n" ONE_BACKEND
				  "  - name: b\n    address: 192.0.2.1\n    port: 80\n"
				  "    protocol: udp\n" ONE_BACKEND
				  "  - name: c\n    address: 192.0.2.1\n    port: all\n"
				  "    protocol: udp\n" ONE_BACKEND;
	struct load_result r;

	load(write_file("ok.yaml", ok), &r);
	if (r.ret)
		fail_msg("distinct VIPs rejected: %s", r.errors);
	result_free(&r);
}

/* health: GLB's defaults, the fleet-wide checks inherited, a VIP's own overriding them. */
static void test_health_config(void **state)
{
	const char *text =
		"hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\n"
		"health:\n"
		"  interval: 500ms\n"
		"  fall: 2\n"
		"  checks:\n"
		"    - kind: tcp\n"
		"    - {kind: http, path: /healthz, status: 204, host: www.example.com}\n"
		"    - {kind: tunnel}\n"
		"vips:\n"
		"  - name: web\n"
		"    address: 198.51.100.10\n"
		"    port: 443\n"
		"    protocol: tcp\n"
		"    backends: [{id: 1, address: 10.20.0.1}]\n"
		"  - name: dns\n"
		"    address: 198.51.100.11\n"
		"    port: all\n"
		"    protocol: udp\n"
		"    health:\n"
		"      interval: 3\n"
		"      timeout: 2s\n"
		"      checks: [{kind: https, port: 8443}]\n"
		"    backends: [{id: 1, address: 10.20.0.1}]\n"
		"  - name: quiet\n"
		"    address: 198.51.100.12\n"
		"    port: 80\n"
		"    protocol: tcp\n"
		"    health: {checks: []}\n"
		"    backends: [{id: 1, address: 10.20.0.1}]\n";
	struct load_result r;
	const struct fp_health_cfg *h;

	(void)state;
	load(write_file("health.yaml", text), &r);
	if (r.ret)
		fail_msg("%s", r.errors);
	assert_int_equal(r.cfg->health.interval_ms, 500);
	assert_int_equal(r.cfg->health.timeout_ms, 500); /* the default 1 s, cut to the interval */
	assert_int_equal(r.cfg->lines.health, 3);	 /* where the mapping starts */
	h = &r.cfg->vips[0].health; /* inherits everything; tcp/http on the VIP's port */
	assert_int_equal(h->interval_ms, 500);
	assert_int_equal(h->timeout_ms, 500);
	assert_int_equal(h->rise, 3);
	assert_int_equal(h->fall, 2);
	assert_int_equal(h->n_checks, 3);
	assert_int_equal(h->checks[0].kind, FP_CHECK_TCP);
	assert_int_equal(h->checks[0].port, 443);
	assert_int_equal(h->checks[0].line, 6);
	assert_int_equal(h->checks[1].kind, FP_CHECK_HTTP);
	assert_int_equal(h->checks[1].port, 443);
	assert_int_equal(h->checks[1].status, 204);
	assert_string_equal(h->checks[1].path, "/healthz");
	assert_string_equal(h->checks[1].host, "www.example.com");
	assert_int_equal(h->checks[2].kind, FP_CHECK_TUNNEL);
	assert_int_equal(h->checks[2].port, 0);
	h = &r.cfg->vips[1].health; /* its own checks and interval, the fleet's fall */
	assert_int_equal(h->interval_ms, 3000);
	assert_int_equal(h->timeout_ms, 2000);
	assert_int_equal(h->fall, 2);
	assert_int_equal(h->n_checks, 1);
	assert_int_equal(h->checks[0].kind, FP_CHECK_HTTPS);
	assert_int_equal(h->checks[0].port, 8443);
	assert_string_equal(h->checks[0].path, "/");
	assert_int_equal(h->checks[0].status, 200);
	assert_string_equal(h->checks[0].host, "");
	assert_int_equal(r.cfg->vips[2].health.n_checks, 0);
	result_free(&r);

	/* No health anywhere: no checks, GLB's defaults. */
	load(write_file("plain.yaml", VALID_HEAD), &r);
	assert_int_equal(r.ret, 0);
	h = &r.cfg->vips[0].health;
	assert_int_equal(h->n_checks, 0);
	assert_int_equal(h->interval_ms, 2000);
	assert_int_equal(h->timeout_ms, 1000);
	assert_int_equal(h->rise, 3);
	assert_int_equal(h->fall, 3);
	result_free(&r);
}

static void test_health_errors(void **state)
{
	(void)state;
	EXPECT(VALID_HEAD "health:\n  interval: 50ms\n  timeout: 2h\n  rise: 0\n  fall: 101\n"
			  "  color: red\n",
	       "11: health.interval: must be a duration of 100ms..3600s (\"2\" or \"2s\" = "
	       "seconds, \"500ms\", \"10m\", \"1h\"), got '50ms'",
	       "12: health.timeout: must be a duration of 10ms..3600s (\"2\" or \"2s\" = "
	       "seconds, \"500ms\", \"10m\", \"1h\"), got '2h'",
	       "13: health.rise: must be 1..100, got 0", "14: health.fall: must be 1..100, got 101",
	       "15: health.color: unknown key (known: interval, timeout, rise, fall, checks)");
	EXPECT(VALID_HEAD "health:\n  interval: 1\n  timeout: 1500ms\n",
	       "12: health.timeout: timeout (1500ms) must not exceed interval (1000ms)");
	EXPECT(VALID_HEAD "health:\n  checks:\n    - kind: ping\n    - port: 80\n"
			  "    - {kind: tunnel, port: 80, path: /}\n"
			  "    - {kind: tcp, status: 200, port: 0}\n"
			  "    - {kind: http, path: health, status: 700, host: 'a b'}\n"
			  "    - {kind: https, path: '/a b'}\n",
	       "12: health.checks[0].kind: must be tcp, http, https or tunnel, got 'ping'",
	       "13: health.checks[1].kind: missing (required)",
	       "14: health.checks[2].port: a tunnel check goes to encap_port; it takes no port",
	       "14: health.checks[2].path: only for http and https checks, this one is tunnel",
	       "15: health.checks[3].port: must be 1..65535, got 0",
	       "15: health.checks[3].status: only for http and https checks, this one is tcp",
	       "16: health.checks[4].path: must start with '/' and be 1..255 visible ASCII "
	       "characters (no blanks), got 'health'",
	       "16: health.checks[4].status: must be 100..599, got 700",
	       "16: health.checks[4].host: must be a host name of 1..253 letters, digits, '-' "
	       "and '.', got 'a b'",
	       "17: health.checks[5].path: must start with '/' and be 1..255 visible ASCII "
	       "characters (no blanks), got '/a b'");
	EXPECT(VALID_HEAD "health: {checks: tcp}\n", "10: health.checks: must be a list of checks");
	EXPECT(VALID_HEAD "health: {checks: [{kind: tcp}, {kind: tcp}, {kind: tcp}, {kind: tcp}, "
			  "{kind: tcp}, {kind: tcp}, {kind: tcp}, {kind: tcp}, {kind: tcp}]}\n",
	       "10: health.checks: at most 8 checks, got 9");
	/* A VIP of every port has no port to inherit for tcp and http checks. */
	EXPECT("hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\n"
	       "health:\n  checks: [{kind: tcp}, {kind: tunnel}]\nvips:\n"
	       "  - name: all\n    address: 192.0.2.1\n    port: all\n    protocol: tcp\n"
	       "    health:\n      timeout: 3s\n" ONE_BACKEND
	       "  - name: own\n    address: 192.0.2.2\n    port: 0\n    protocol: tcp\n"
	       "    health:\n      checks:\n        - kind: http\n" ONE_BACKEND,
	       "3: health.checks[0].port: required: vips[0] (all) serves every port (port 0) "
	       "and inherits this tcp check; give it a port, or give the VIP its own checks",
	       "10: vips[0].health.timeout: timeout (3000ms) must not exceed interval (2000ms)",
	       "18: vips[1].health.checks[0].port: required: the VIP serves every port (port 0), "
	       "so a http check must name the port it probes");
}

static void test_bgp_config(void **state)
{
	const char *text = "hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\n"
			   "bgp:\n"
			   "  include: /etc/bird/flowpin-lb1.conf\n"
			   "  socket: /run/bird/lb1.ctl\n"
			   "  timeout: 500ms\n"
			   "  alive_interface: fp-alive\n"
			   "  interval: 2s\n"
			   "  rise: 5\n"
			   "  fall: 1\n"
			   "  damping: {penalty: 500, suppress: 3000, reuse: 400, half_life: 5m, "
			   "max_suppress: 1h}\n"
			   "  maintenance: {deadline: 30m, until_flows: 100}\n"
			   "  vips: [web, web-tls]\n"
			   "vips:\n"
			   "  - name: web\n"
			   "    address: 198.51.100.10\n"
			   "    port: 80\n"
			   "    protocol: tcp\n"
			   "    backends: [{id: 1, address: 10.20.0.1}]\n"
			   "  - name: dns\n"
			   "    address: 2001:db8::53\n"
			   "    port: 53\n"
			   "    protocol: udp\n"
			   "    backends: [{id: 1, address: 10.20.0.1}]\n"
			   "  - name: web-tls\n"
			   "    address: 198.51.100.10\n"
			   "    port: 443\n"
			   "    protocol: tcp\n"
			   "    backends: [{id: 1, address: 10.20.0.1}]\n";
	struct fp_bgp_group groups[FP_MAX_VIPS];
	struct fp_announce_params p;
	struct fp_maintenance m;
	const struct fp_bgp_cfg *b;
	struct load_result r;

	(void)state;
	load(write_file("bgp.yaml", text), &r);
	if (r.ret)
		fail_msg("%s", r.errors);
	b = &r.cfg->bgp;
	assert_true(b->enabled);
	assert_int_equal(b->line, 3);
	assert_int_equal(r.cfg->lines.bgp, 3);
	assert_string_equal(b->include, "/etc/bird/flowpin-lb1.conf");
	assert_string_equal(b->socket, "/run/bird/lb1.ctl");
	assert_string_equal(b->alive_interface, "fp-alive");
	assert_int_equal(b->timeout_ms, 500);
	assert_int_equal(b->interval_ms, 2000);
	assert_int_equal(b->rise, 5);
	assert_int_equal(b->fall, 1);
	assert_true(b->damping);
	assert_int_equal(b->penalty, 500);
	assert_int_equal(b->suppress, 3000);
	assert_int_equal(b->reuse, 400);
	assert_int_equal(b->half_life_ms, 300000);
	assert_int_equal(b->max_suppress_ms, 3600000);
	assert_int_equal(b->maintenance_deadline_ms, 1800000);
	assert_int_equal(b->maintenance_until_flows, 100);
	assert_int_equal(b->vips, 0x5); /* web and web-tls */
	fp_bgp_params(b, &p);
	assert_int_equal(p.rise, 5);
	assert_true(p.suppress == 3000.0);
	assert_true(p.half_life_ns == 300ULL * FP_NS_PER_SEC);
	/* One route for web and web-tls; dns is not announced. */
	assert_int_equal(fp_bgp_groups(r.cfg, groups), 1);
	assert_memory_equal(&groups[0].addr, &r.cfg->vips[0].addr, sizeof(groups[0].addr));
	assert_int_equal(groups[0].vips, 0x5);
	fp_maintenance_start(&m, b, 1000, -1, -1);
	assert_true(m.on);
	assert_int_equal(m.deadline_ns, 1000 + 1800ULL * FP_NS_PER_SEC);
	assert_int_equal(m.until_flows, 100);
	fp_maintenance_start(&m, b, 1000, 0, 5);
	assert_int_equal(m.deadline_ns, 0);
	assert_int_equal(m.until_flows, 5);
	result_free(&r);

	/* `all`, everything else the defaults (RFC 7196's damping, flowpin/announce.h). */
	load(write_file("bgp-all.yaml", VALID_HEAD "bgp: {vips: all}\n"), &r);
	if (r.ret)
		fail_msg("%s", r.errors);
	b = &r.cfg->bgp;
	assert_string_equal(b->include, "/etc/bird/flowpin.conf");
	assert_string_equal(b->socket, "/run/bird/bird.ctl");
	assert_string_equal(b->alive_interface, "");
	assert_int_equal(b->timeout_ms, 2000);
	assert_int_equal(b->interval_ms, 1000);
	assert_int_equal(b->rise, 3);
	assert_int_equal(b->fall, 2);
	assert_int_equal(b->suppress, 6000);
	assert_int_equal(b->reuse, 750);
	assert_int_equal(b->half_life_ms, 900000);
	assert_int_equal(b->max_suppress_ms, 3600000);
	assert_int_equal(b->maintenance_deadline_ms, 600000);
	assert_int_equal(b->maintenance_until_flows, 0);
	assert_int_equal(b->vips, 0x1);
	result_free(&r);

	/* No section: nothing announced. */
	load(write_file("plain.yaml", VALID_HEAD), &r);
	assert_int_equal(r.ret, 0);
	assert_false(r.cfg->bgp.enabled);
	assert_int_equal(fp_bgp_groups(r.cfg, groups), 0);
	result_free(&r);
}

static void test_bgp_errors(void **state)
{
	(void)state;
	EXPECT(VALID_HEAD "bgp:\n  include: flowpin.conf\n  socket: /run/bird/"
			  "0123456789012345678901234567890123456789012345678901234567890123456789"
			  "012345678901234567890123456789.ctl\n"
			  "  timeout: 0\n  alive_interface: 'fp alive'\n  interval: 2m\n  rise: 0\n"
			  "  fall: 101\n  colour: blue\n  vips: [web]\n",
	       "11: bgp.include: must be an absolute path of at most 255 bytes, got "
	       "'flowpin.conf'",
	       "12: bgp.socket: must be an absolute path of at most 107 bytes, got '/run/bird/"
	       "0123456789012345678901234567890123456789012345678901234567890123456789"
	       "012345678901234567890123456789.ctl'",
	       "13: bgp.timeout: must be a duration of 10ms..60s (\"2\" or \"2s\" = seconds, "
	       "\"500ms\", \"10m\", \"1h\"), got '0'",
	       "14: bgp.alive_interface: must be 1..15 characters of A-Z a-z 0-9 . _ -, got "
	       "'fp alive'",
	       "15: bgp.interval: must be a duration of 100ms..60s (\"2\" or \"2s\" = seconds, "
	       "\"500ms\", \"10m\", \"1h\"), got '2m'",
	       "16: bgp.rise: must be 1..100, got 0", "17: bgp.fall: must be 1..100, got 101",
	       "18: bgp.colour: unknown key (known: include, socket, timeout, alive_interface, "
	       "interval, rise, fall, damping, maintenance, vips)");
	/* Damping that can never suppress, or releases at once. */
	EXPECT(VALID_HEAD "bgp:\n  vips: all\n  damping: {suppress: 6000, reuse: 7000}\n",
	       "12: bgp.damping: reuse must be below suppress (else a suppressed address is "
	       "released at once)");
	EXPECT(VALID_HEAD "bgp:\n  vips: all\n  damping: {max_suppress: 20m}\n",
	       "12: bgp.damping: reuse x 2^(max_suppress / half_life) must be above suppress "
	       "(else the penalty can never reach it)");
	EXPECT(VALID_HEAD "bgp:\n  vips: all\n  damping: {enabled: yes, penalty: 0}\n"
			  "  maintenance: {deadline: 2d, until_flows: -1}\n",
	       "12: bgp.damping.enabled: must be false or true, got 'yes'",
	       "12: bgp.damping.penalty: must be 1..1000000, got 0",
	       "13: bgp.maintenance.deadline: must be a duration of 1000ms..86400s (\"2\" or "
	       "\"2s\" = seconds, \"500ms\", \"10m\", \"1h\"), got '2d'",
	       "13: bgp.maintenance.until_flows: must be 0..4294967295, got '-1'");
	/* bgp.vips: required, names that exist, once, and whole addresses. */
	EXPECT(VALID_HEAD "bgp: {include: /etc/bird/flowpin.conf}\n",
	       "10: bgp.vips: missing (required): the VIPs this node announces, a list of names "
	       "or 'all'");
	EXPECT(VALID_HEAD "bgp: {vips: []}\n",
	       "10: bgp.vips: empty: name at least one VIP (or 'all'), or leave the bgp section "
	       "out");
	EXPECT(VALID_HEAD "bgp: {vips: web}\n",
	       "10: bgp.vips: must be a list of VIP names, or 'all'");
	EXPECT(VALID_HEAD "  - name: web-tls\n    address: 198.51.100.10\n    port: 8443\n"
			  "    protocol: tcp\n    backends: [{id: 1, address: 10.20.0.1}]\n"
			  "bgp:\n  vips:\n    - web\n    - nope\n    - web\n",
	       "17: bgp.vips: 'web' shares address 198.51.100.10 with vips[1] ('web-tls', line "
	       "10), which is not listed: one route carries both, list both or neither",
	       "18: bgp.vips[1]: no VIP is named 'nope'", "19: bgp.vips[2]: 'web' is listed twice");
	EXPECT(VALID_HEAD "bgp: on\n",
	       "10: bgp: must be a mapping (key: value lines), got a scalar");
}

static void test_backend_errors(void **state)
{
	(void)state;
	EXPECT(VIP_HEAD "  - name: web\n    address: 192.0.2.1\n    port: 80\n    protocol: tcp\n"
			"    backends:\n"
			"      - id: 0\n"		/* 8 */
			"        address: 10.0.0.1\n"	/* 9 */
			"      - id: 4096\n"		/* 10 */
			"        address: 10.0.0.2\n"	/* 11 */
			"        weight: 0\n"		/* 12 */
			"      - address: 10.0.0.3\n"	/* 13 */
			"        weight: 65536\n"	/* 14 */
			"        state: up\n"		/* 15 */
			"      - id: 5\n"		/* 16 */
			"        address: 10.0.0.300\n" /* 17 */
			"        port: 8080\n"		/* 18 */
			"      - id: 6\n",		/* 19 */
	       "8: vips[0].backends[0].id: must be 1..4095, got 0",
	       "10: vips[0].backends[1].id: must be 1..4095, got 4096",
	       "12: vips[0].backends[1].weight: must be 1..65535, got 0",
	       "13: vips[0].backends[2].id: missing (required)",
	       "14: vips[0].backends[2].weight: must be 1..65535, got 65536",
	       "15: vips[0].backends[2].state: must be active, draining or down, got 'up'",
	       "17: vips[0].backends[3].address: not an IPv4 or IPv6 address: '10.0.0.300'",
	       "18: vips[0].backends[3].port: unknown key (known: id, address, weight, state, "
	       "server_id, pop)",
	       "19: vips[0].backends[4].address: missing (required)");
	EXPECT(VIP_HEAD "  - name: web\n    address: 192.0.2.1\n    port: 80\n    protocol: tcp\n"
			"    backends:\n"
			"      - {id: 3, address: 10.0.0.1}\n"	/* 8 */
			"      - {id: 4, address: 10.0.0.2}\n"	/* 9 */
			"      - {id: 3, address: 10.0.0.3}\n"	/* 10 */
			"      - {id: 5, address: 10.0.0.2}\n", /* 11 */
	       "10: vips[0].backends[2].id: duplicate id 3 (also backends[0], line 8)",
	       "11: vips[0].backends[3].address: duplicate address 10.0.0.2 (also backends[1], "
	       "line 9)");
	/* A third repeat is named once, against the first, not once per earlier copy. */
	EXPECT(VIP_HEAD "  - name: web\n    address: 192.0.2.1\n    port: 80\n    protocol: tcp\n"
			"    backends:\n"
			"      - {id: 3, address: 10.0.0.1}\n"	/* 8 */
			"      - {id: 3, address: 10.0.0.1}\n"	/* 9 */
			"      - {id: 3, address: 10.0.0.1}\n", /* 10 */
	       "9: vips[0].backends[1].id: duplicate id 3 (also backends[0], line 8)",
	       "9: vips[0].backends[1].address: duplicate address 10.0.0.1 (also backends[0], "
	       "line 8)",
	       "10: vips[0].backends[2].id: duplicate id 3 (also backends[0], line 8)",
	       "10: vips[0].backends[2].address: duplicate address 10.0.0.1 (also backends[0], "
	       "line 8)");
	EXPECT(VIP_HEAD
	       "  - name: a\n    address: 192.0.2.1\n    port: 80\n    protocol: tcp\n" ONE_BACKEND
	       "  - name: a\n    address: 192.0.2.1\n    port: 80\n    protocol: tcp\n" ONE_BACKEND
	       "  - name: a\n    address: 192.0.2.1\n    port: 80\n    protocol: tcp\n" ONE_BACKEND,
	       "8: vips[1]: duplicate VIP 192.0.2.1 port 80/tcp (also vips[0], line 3)",
	       "8: vips[1].name: duplicate name 'a' (also vips[0], line 3)",
	       "13: vips[2]: duplicate VIP 192.0.2.1 port 80/tcp (also vips[0], line 3)",
	       "13: vips[2].name: duplicate name 'a' (also vips[0], line 3)");
	/* The brief's example, exactly. */
	EXPECT(VIP_HEAD "  - {name: a, address: 192.0.2.1, port: 1, protocol: tcp," ONE_BACKEND
			"  }\n"
			"  - name: b\n    address: 192.0.2.1\n    port: 2\n    protocol: tcp\n"
			"    backends:\n"
			"      - id: 1\n"
			"        address: 10.0.0.1\n"
			"        weight: 0\n",
	       "12: vips[1].backends[0].weight: must be 1..65535, got 0");
}

/* Every problem of a file at once, in line order, however the checks ran. */
static void test_every_error_in_line_order(void **state)
{
	const char *path = write_file("many.yaml", "encap_port: 0\n"
						   "hash_key: nope\n"
						   "table_size: 100\n"
						   "vips: []\n");
	struct load_result r;

	(void)state;
	load(path, &r);
	char *want = NULL;

	assert_true(asprintf(&want,
			     "%1$s:1: encap_port: must be 1..65535, got 0\n"
			     "%1$s:2: hash_key: must be 32 hex digits (128 bits), got 'nope' (4 "
			     "characters)\n"
			     "%1$s:3: table_size: must be prime, got 100 (next prime: 101)\n"
			     "%1$s:4: vips: empty: at least one VIP is needed\n",
			     path) > 0);
	assert_string_equal(r.errors, want);
	assert_int_equal(r.ret, -EINVAL);
	assert_null(r.cfg);
	free(want);
	result_free(&r);
}

static void test_yaml_level_errors(void **state)
{
	(void)state;
	EXPECT("", "1: yaml: empty file: expected a mapping with hash_key and vips");
	EXPECT("hash_key: [1, 2\nvips: []\n",
	       "2: yaml: did not find expected ',' or ']' while parsing a flow sequence");
	EXPECT(VALID_HEAD "---\nhash_key: 1\n",
	       "11: yaml: a second YAML document ('---'); put everything in one");
}

static void test_missing_and_unreadable_files(void **state)
{
	char path[300];
	struct load_result r;

	(void)state;
	snprintf(path, sizeof(path), "%s/does-not-exist.yaml", tmpdir);
	load(path, &r);
	assert_int_equal(r.ret, -ENOENT);
	assert_null(r.cfg);
	char *want = NULL;

	assert_true(asprintf(&want, "%s: cannot open: No such file or directory\n", path) > 0);
	assert_string_equal(r.errors, want);
	free(want);
	result_free(&r);

	load(tmpdir, &r);
	assert_int_equal(r.ret, -EISDIR);
	assert_null(r.cfg);
	assert_non_null(strstr(r.errors, "cannot read: Is a directory"));
	result_free(&r);
}

/*
 * A file the process may not read. Root reads anything, so as root the load runs in a
 * child that dropped to nobody (65534); the verdict comes back through a pipe.
 */
static void test_permission_denied(void **state)
{
	const char *path = write_file("secret.yaml", VALID_HEAD);
	int fds[2], status;
	char msg[512] = "";
	ssize_t got;
	pid_t pid;

	(void)state;
	assert_int_equal(chmod(path, 0), 0);
	assert_int_equal(chmod(tmpdir, 0755), 0);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct load_result r;
		int code;

		close(fds[0]);
		if (geteuid() == 0 && (setgid(65534) || setuid(65534)))
			_exit(100);
		load(path, &r);
		code = r.ret == -EACCES && r.cfg == NULL ? 0 : 101;
		if (write(fds[1], r.errors, strlen(r.errors)) < 0)
			code = 102;
		_exit(code);
	}
	close(fds[1]);
	got = read(fds[0], msg, sizeof(msg) - 1);
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 100)
		skip(); /* could not drop privileges: cannot make a file unreadable to root */
	assert_true(got > 0);
	msg[got] = '\0';
	if (WEXITSTATUS(status) != 0 || !strstr(msg, "cannot open: Permission denied"))
		fail_msg("child status %d, message '%s'", WEXITSTATUS(status), msg);
}

/* Reordered backends, keys and VIPs: the same tables, byte for byte. */
static void test_shuffled_config_same_tables(void **state)
{
	const char *a = "hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\n"
			"vips:\n"
			"  - name: web\n"
			"    address: 198.51.100.10\n"
			"    port: 443\n"
			"    protocol: tcp\n"
			"    backends:\n"
			"      - {id: 1, address: 10.0.0.1, weight: 100}\n"
			"      - {id: 2, address: 10.0.0.2, weight: 300}\n"
			"      - {id: 9, address: 10.0.0.9, weight: 50}\n"
			"      - {id: 4, address: 10.0.0.4, state: draining}\n"
			"      - {id: 5, address: 10.0.0.5}\n";
	const char *b = "vips:\n"
			"  - protocol: tcp\n"
			"    backends:\n"
			"      - {address: 10.0.0.5, id: 5}\n"
			"      - {state: draining, id: 4, address: 10.0.0.4}\n"
			"      - {weight: 50, id: 9, address: 10.0.0.9}\n"
			"      - {id: 1, address: 10.0.0.1}\n"
			"      - {id: 2, weight: 300, address: 10.0.0.2}\n"
			"    port: 443\n"
			"    address: 198.51.100.10\n"
			"    name: web\n"
			"hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\n";
	struct load_result ra, rb;
	__u16 *ta = calloc(65537, 2), *tb = calloc(65537, 2);

	(void)state;
	assert_non_null(ta);
	assert_non_null(tb);
	load(write_file("a.yaml", a), &ra);
	load(write_file("b.yaml", b), &rb);
	assert_int_equal(ra.ret, 0);
	assert_int_equal(rb.ret, 0);
	assert_int_equal(fp_maglev_build_vip(ra.cfg, &ra.cfg->vips[0], ta), 0);
	assert_int_equal(fp_maglev_build_vip(rb.cfg, &rb.cfg->vips[0], tb), 0);
	assert_memory_equal(ta, tb, 65537 * 2);
	/* Draining backend 4 owns nothing; the others share by weight. */
	for (__u32 i = 0; i < 65537; i++)
		assert_int_not_equal(ta[i], 4);
	result_free(&ra);
	result_free(&rb);
	free(ta);
	free(tb);
}

/*
 * Robustness: thousands of randomly damaged copies of the example file. Each must load
 * or fail cleanly: -EINVAL and no config, every message line "FILE:LINE: ...".
 */
static void test_damaged_files(void **state)
{
	char *text = example_allowed(), damaged[16500], prefix[300];
	size_t len = strlen(text);
	__u64 s = 2024;
	int loaded = 0, rejected = 0;
	static const char pool[] = " :-[]{}#'\"\n\t&*!|>%@`,0123456789abcxyz./";

	(void)state;
	for (int trial = 0; trial < 3000; trial++) {
		size_t n = 0;
		struct load_result r;
		const char *path;

		for (size_t i = 0; i < len; i++) {
			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			/* One byte in 400 .. 12800 damaged, so both outcomes occur. */
			switch ((s >> 33) % (400U << (trial % 6))) {
			case 0: /* drop the byte */
				break;
			case 1: /* replace it */
				damaged[n++] = pool[(s >> 20) % (sizeof(pool) - 1)];
				break;
			case 2: /* insert one before it */
				damaged[n++] = pool[(s >> 20) % (sizeof(pool) - 1)];
				damaged[n++] = text[i];
				break;
			default:
				damaged[n++] = text[i];
			}
		}
		damaged[n] = '\0';
		path = write_file("damaged.yaml", damaged);
		snprintf(prefix, sizeof(prefix), "%s:", path);
		load(path, &r);
		if (r.ret == 0) {
			assert_non_null(r.cfg);
			assert_string_equal(r.errors, "");
			loaded++;
		} else {
			assert_int_equal(r.ret, -EINVAL);
			assert_null(r.cfg);
			assert_true(r.errors_len > 0);
			for (char *line = r.errors; *line;) {
				char *nl = strchr(line, '\n');
				char *after = line + strlen(prefix);

				assert_non_null(nl);
				if (strncmp(line, prefix, strlen(prefix)) || *after < '1' ||
				    *after > '9')
					fail_msg("malformed message: %.*s", (int)(nl - line), line);
				line = nl + 1;
			}
			rejected++;
		}
		result_free(&r);
	}
	print_message("# damaged example files: %d loaded, %d rejected\n", loaded, rejected);
	assert_true(rejected > 1000); /* the damage is real */
	assert_true(loaded > 100);    /* and not total */
	free(text);
}

/* Loads @text as @use would; the result's errors are checked by the caller. */
static void load_text_for(const char *text, enum fp_config_for use, struct load_result *r)
{
	const char *path = write_file("for.yaml", text);
	FILE *err = open_memstream(&r->errors, &r->errors_len);

	assert_non_null(err);
	r->ret = fp_config_load_for(path, use, &r->cfg, err);
	fclose(err);
}

/* Reader errors (bad UTF-8, control characters) at their own line. */
static void test_yaml_errors_at_their_line(void **state)
{
	(void)state;
	EXPECT(VALID_HEAD "encap_port: 6080\n# caf\xc3\n",
	       "11: yaml: invalid trailing UTF-8 octet (0x0a at column 7)");
	EXPECT(VALID_HEAD "\xff: 1\n", "10: yaml: invalid leading UTF-8 octet (0xff at column 1)");
	EXPECT(VALID_HEAD "timeouts:\n  udp: \"30\a\"\n",
	       "11: yaml: control characters are not allowed (0x07 at column 11)");
	EXPECT(VALID_HEAD "x: \"\x01\"\n",
	       "10: yaml: control characters are not allowed (0x01 at column 5)");
}

/*
 * A NUL byte ("\0" in double quotes) would cut a C string short, so
 * "web\0evil" became "web" and "all\0x" the port "all". Values and keys with one are
 * refused where they are.
 */
static void test_nul_bytes_refused(void **state)
{
	(void)state;
	EXPECT(VIP_HEAD "  - name: \"web\\0evil\"\n"
			"    address: 198.51.100.10\n"
			"    port: \"all\\0x\"\n"
			"    protocol: \"tcp\\0\"\n" ONE_BACKEND,
	       "3: vips[0].name: must be a name, got text with a NUL byte ('web\\0...')",
	       "5: vips[0].port: must be an integer, got text with a NUL byte ('all\\0...')",
	       "6: vips[0].protocol: must be a word, got text with a NUL byte ('tcp\\0...')");
	EXPECT(VALID_HEAD "\"table_size\\0x\": 7\n",
	       "10: table_size: key with a NUL byte ('table_size\\0...')");
	EXPECT("hash_key: \"5a1f0e9d8c7b6a594837261504f3e2d1\\0\"\n"
	       "vips:\n"
	       "  - {name: web, address: 198.51.100.10, port: 80, protocol: tcp,\n"
	       "     backends: [{id: 1, address: \"10.0.0.1\\0:80\"}]}\n",
	       "1: hash_key: must be 32 hex digits, got text with a NUL byte "
	       "('5a1f0e9d8c7b6a594837261504f3e2d1\\0...')",
	       "4: vips[0].backends[0].address: must be an IPv4 or IPv6 address, got text with a "
	       "NUL byte ('10.0.0.1\\0...')");
}

/* @n VIPs of one backend each, after @head. Returns a malloc'd text. */
static char *vips_text(const char *head, int n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	fprintf(f, "%svips:\n", head);
	for (int i = 0; i < n; i++)
		fprintf(f,
			"  - {name: v%d, address: 198.51.%d.%d, port: 80, protocol: tcp, "
			"backends: [{id: 1, address: 10.0.0.1}]}\n",
			i, 100 + i / 250, 1 + i % 250);
	fclose(f);
	return text;
}

/*
 * Every limit `lb up` and `backend up` enforce is the loader's, with a
 * line, so `flowpin check` refuses what they would refuse.
 */
static void test_lb_and_backend_limits(void **state)
{
	struct load_result r;
	char *text;

	(void)state;
	/* 33 VIPs -> 64 VIP slots x 2 x 16777213 buckets: more than the bucket array. */
	text = vips_text("hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\ntable_size: 16777213\n", 33);
	EXPECT(text, "2: table_size: 16777213 does not fit an LB node's bucket array with 33 VIPs "
		     "(64 VIP slots x 2 tables x table_size <= 1073741823 buckets); use at most "
		     "8388593");
	load_text_for(text, FP_CONFIG_FOR_BACKEND, &r); /* backends have no buckets... */
	assert_non_null(strstr(r.errors, ": lb_sources: missing")); /* ...but need sources */
	assert_null(strstr(r.errors, "table_size"));
	result_free(&r);
	free(text);
	/* The largest table_size that fits 33 VIPs loads. */
	text = vips_text("hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\ntable_size: 8388593\n", 33);
	load_text_for(text, FP_CONFIG_FOR_LB, &r);
	if (r.ret)
		fail_msg("%s", r.errors);
	assert_int_equal(r.cfg->table_size, fp_config_max_table_size(fp_config_vip_slots(33)));
	result_free(&r);
	free(text);
	assert_int_equal(fp_config_vip_slots(1), 8);
	assert_int_equal(fp_config_vip_slots(5), 10);
	assert_int_equal(fp_config_vip_slots(64), 64);

	/* 1,100 LB sources: more than the backends' allowlist holds. */
	{
		char *head = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&head, &len);

		fprintf(f, "hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\nlb_sources:\n");
		for (int i = 0; i < 1100; i++)
			fprintf(f, "  - 10.1.%d.%d\n", i / 256, i % 256);
		fclose(f);
		text = vips_text(head, 1);
		free(head);
		EXPECT(text, "3: lb_sources: at most 1024 prefixes (the backends' allowlist), "
			     "got 1100");
		free(text);
	}
	/* Backends need lb_sources; an LB node does not. */
	load_text_for(VALID_HEAD, FP_CONFIG_FOR_BACKEND, &r);
	assert_int_equal(r.ret, -EINVAL);
	assert_non_null(strstr(r.errors, "for.yaml:1: lb_sources: missing: a backend would drop "
					 "every encapsulated packet"));
	result_free(&r);
	load_text_for(VALID_HEAD "lb_sources: []\n", FP_CONFIG_FOR_FLEET, &r);
	assert_int_equal(r.ret, -EINVAL);
	assert_non_null(strstr(r.errors, "for.yaml:10: lb_sources: empty: a backend would drop"));
	result_free(&r);
	load_text_for(VALID_HEAD, FP_CONFIG_FOR_LB, &r);
	assert_int_equal(r.ret, 0);
	result_free(&r);
}

/* Where each top-level setting is, for "needs a restart" messages. */
static void test_setting_lines(void **state)
{
	struct load_result r;

	(void)state;
	load(write_file("lines.yaml", VALID_HEAD "timeouts: {udp: 10}\n"
						 "table_size: 65537\n"),
	     &r);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.cfg->lines.hash_key, 1);
	assert_int_equal(r.cfg->lines.vips, 3); /* the list starts at its first item */
	assert_int_equal(r.cfg->lines.timeouts, 10);
	assert_int_equal(r.cfg->lines.table_size, 11);
	assert_int_equal(r.cfg->lines.encap_port, 1); /* defaulted: the top-level mapping */
	assert_int_equal(r.cfg->lines.sessions_entries, 1);
	result_free(&r);
	load(write_file("lines.yaml", VALID_HEAD "sessions:\n  new_flow_rate: 0\n"
						 "  entries: 1048576\n"),
	     &r);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.cfg->sessions.entries, 1048576);
	assert_int_equal(r.cfg->sessions.new_flow_rate, 0); /* no limit */
	assert_int_equal(r.cfg->lines.sessions_new_flow_rate, 11);
	assert_int_equal(r.cfg->lines.sessions_entries, 12);
	result_free(&r);
}

/* `sessions`: each field's range, FILE:LINE: FIELD: message, nothing else taken. */
static void test_sessions_errors(void **state)
{
	(void)state;
	EXPECT(VALID_HEAD "sessions:\n  entries: 1023\n  new_flow_rate: 1000000001\n"
			  "  size: 5\n",
	       "11: sessions.entries: must be 1024..134217728, got 1023",
	       "12: sessions.new_flow_rate: must be 0..1000000000, got 1000000001",
	       "13: sessions.size: unknown key (known: entries, new_flow_rate)");
	EXPECT(VALID_HEAD "sessions: {entries: 134217729}\n",
	       "10: sessions.entries: must be 1024..134217728, got 134217729");
	EXPECT(VALID_HEAD "sessions: {entries: 1m, new_flow_rate: -1}\n",
	       "10: sessions.entries: must be 1024..134217728, got '1m'",
	       "10: sessions.new_flow_rate: must be 0..1000000000, got '-1'");
	EXPECT(VALID_HEAD "sessions: 262144\n",
	       "10: sessions: must be a mapping (key: value lines), got a scalar");
}

/* Writes @n "- *b" aliases of one backend into a VIP after @head; malloc'd text. */
static char *aliased_backends(int n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	fprintf(f, "hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\n"
		   "table_size: 16777213\n"
		   "vips:\n"
		   "  - name: web\n"
		   "    address: 198.51.100.10\n"
		   "    port: 443\n"
		   "    protocol: tcp\n"
		   "    backends:\n"
		   "      - &b {id: 1, address: 10.0.0.1}\n");
	for (int i = 1; i < n; i++)
		fputs("      - *b\n", f);
	fclose(f);
	return text;
}

/*
 * Large and deep files are refused at once, naming the line (not
 * timed: each case is one error message; before the caps they took seconds to minutes).
 */
static void test_size_and_depth_caps(void **state)
{
	struct load_result r;
	char *text;
	size_t n;

	(void)state;
	/* 100,000 aliases of one backend: the count is capped before any check runs. */
	text = aliased_backends(100000);
	EXPECT(text, "9: vips[0].backends: at most 4095 backends (ids are 1..4095), got 100000");
	free(text);
	/* 4,095 of them: every repeat found, once, against the first. */
	text = aliased_backends(4095);
	load(write_file("alias.yaml", text), &r);
	assert_int_equal(r.ret, -EINVAL);
	n = 0;
	for (const char *p = r.errors; (p = strstr(p, "duplicate id 1 (also backends[0], line 9)"));
	     p++)
		n++;
	assert_int_equal(n, 4094);
	assert_non_null(strstr(r.errors, "vips[0].backends[4094].address: duplicate address "
					 "10.0.0.1 (also backends[0], line 9)"));
	result_free(&r);
	free(text);

	/* 200,000 nesting levels, flow style (libyaml's scanner is quadratic in these)... */
	n = 200000;
	text = malloc(2 * n + 64);
	assert_non_null(text);
	strcpy(text, "hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\nvips: ");
	{
		size_t at = strlen(text);

		memset(text + at, '[', n);
		memset(text + at + n, ']', n);
		strcpy(text + at + 2 * n, "\n");
	}
	EXPECT(text, "2: yaml: nested more than 16 levels deep (a flowpin config needs 5)");
	free(text);
	/* ...and block style. */
	EXPECT(VALID_HEAD "x:\n"
			  " - - - - - - - - - - - - - - - - - - - - 1\n",
	       "11: yaml: nested more than 16 levels deep (a flowpin config needs 5)");

	/* More values than any config has. */
	n = FP_CONFIG_MAX_VALUES + 1;
	text = malloc(2 * n + 64);
	assert_non_null(text);
	strcpy(text, "x: [");
	for (size_t i = 0, at = 4; i < n; i++, at += 2)
		memcpy(text + at, i + 1 < n ? "1," : "1]", 2);
	strcpy(text + 4 + 2 * n, "\n");
	EXPECT(text, "1: yaml: more than 1048576 values: far more than a flowpin config holds");
	free(text);

	/* More bytes than any config has: refused at the line where the cap falls. */
	n = FP_CONFIG_MAX_BYTES + 10;
	text = malloc(n + 1);
	assert_non_null(text);
	memset(text, '#', n);
	for (size_t i = 99; i < n; i += 100)
		text[i] = '\n'; /* 100-byte comment lines */
	text[n] = '\0';
	EXPECT(text, "167773: yaml: the file is larger than 16777216 bytes (16 MiB): no flowpin "
		     "config is that big");
	free(text);
}

/* Published keys, and backends that need no key. */
static void test_hash_key_rules(void **state)
{
	struct load_result r;

	(void)state;
#define BODY                                                                                   \
	"vips: [{name: w, address: 198.51.100.1, port: 80, protocol: tcp, backends: [{id: 1, " \
	"address: 10.0.0.1}]}]\n"                                                              \
	"lb_sources: [10.9.0.0/24]\n"
#define PUBLISHED                                                                     \
	"1: hash_key: is a key published with flowpin (the example's or the lab's): " \
	"whoever knows it can aim flows at one backend; generate one with 'od -An "   \
	"-tx1 -N16 /dev/urandom | tr -d \" \\n\"' (a lab or test may set "            \
	"allow_example_key: true)"
	EXPECT("hash_key: 000102030405060708090a0b0c0d0e0f\n" BODY, PUBLISHED);
	EXPECT("hash_key: 0123456789ABCDEF0123456789abcdef\n" BODY, PUBLISHED);
	EXPECT("hash_key: 00000000000000000000000000000000\n" BODY, PUBLISHED);
	EXPECT("hash_key: 000102030405060708090a0b0c0d0e0f\nallow_example_key: yes\n" BODY,
	       "2: allow_example_key: must be false or true, got 'yes'", PUBLISHED);
	EXPECT("hash_key: 000102030405060708090a0b0c0d0e0f\nallow_example_key: false\n" BODY,
	       PUBLISHED);
	load_text_for("hash_key: 000102030405060708090a0b0c0d0e0f\nallow_example_key: true\n" BODY,
		      FP_CONFIG_FOR_FLEET, &r);
	assert_int_equal(r.ret, 0);
	assert_string_equal(r.errors, "");
	assert_true(r.cfg->have_hash_key);
	result_free(&r);
	/* Backends never hash: no key is needed, and a published one harms nothing there. */
	load_text_for(BODY, FP_CONFIG_FOR_BACKEND, &r);
	if (r.ret)
		fail_msg("%s", r.errors);
	assert_false(r.cfg->have_hash_key);
	result_free(&r);
	load_text_for("hash_key: 000102030405060708090a0b0c0d0e0f\n" BODY, FP_CONFIG_FOR_BACKEND,
		      &r);
	assert_int_equal(r.ret, 0);
	result_free(&r);
	load_text_for("hash_key: nope\n" BODY, FP_CONFIG_FOR_BACKEND, &r); /* checked if there */
	assert_int_equal(r.ret, -EINVAL);
	result_free(&r);
	/* An LB node needs one. */
	load_text_for(BODY, FP_CONFIG_FOR_LB, &r);
	assert_int_equal(r.ret, -EINVAL);
	assert_non_null(strstr(r.errors, "for.yaml:1: hash_key: missing (required)"));
	result_free(&r);
#undef BODY
#undef PUBLISHED
}

/* tickets: {bits: K}: TCP only, 1..12, every id < 2^K, backends need the key. */
static void test_tickets(void **state)
{
	struct load_result r;

	(void)state;
#define TVIP(proto, tickets)                                                                      \
	VIP_HEAD "  - name: web\n    address: 192.0.2.1\n    port: 80\n    protocol: " proto "\n" \
		 "    tickets: " tickets "\n" /* line 7 */
	load_text_for(TVIP("tcp", "{}") ONE_BACKEND, FP_CONFIG_FOR_LB, &r);
	if (r.ret)
		fail_msg("%s", r.errors);
	assert_int_equal(r.cfg->vips[0].ticket_bits, 8);
	assert_int_equal(r.cfg->vips[0].tickets_line, 7);
	result_free(&r);
	load_text_for(TVIP("tcp", "{bits: 12}") "    backends: [{id: 4095, address: 10.0.0.1}]\n",
		      FP_CONFIG_FOR_FLEET, &r);
	assert_int_equal(r.ret, -EINVAL); /* only for lb_sources */
	assert_null(strstr(r.errors, "ticket"));
	result_free(&r);
	load_text_for(TVIP("tcp", "{bits: 1}") ONE_BACKEND, FP_CONFIG_FOR_LB, &r);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.cfg->vips[0].ticket_bits, 1);
	result_free(&r);
	load_text_for(VALID_HEAD, FP_CONFIG_FOR_LB, &r); /* no tickets unless asked */
	assert_int_equal(r.cfg->vips[0].ticket_bits, 0);
	result_free(&r);

	EXPECT(TVIP("udp", "{bits: 8}") ONE_BACKEND,
	       "7: vips[0].tickets: TCP VIPs only (the ticket travels in the TCP timestamp "
	       "option)");
	EXPECT(TVIP("tcp", "{bits: 0}") ONE_BACKEND,
	       "7: vips[0].tickets.bits: must be 1..12, got 0");
	EXPECT(TVIP("tcp", "{bits: 13}") ONE_BACKEND,
	       "7: vips[0].tickets.bits: must be 1..12, got 13");
	EXPECT(TVIP("tcp", "{bits: 8, key: x}") ONE_BACKEND,
	       "7: vips[0].tickets.key: unknown key (known: bits)");
	EXPECT(TVIP("tcp", "8") ONE_BACKEND,
	       "7: vips[0].tickets: must be a mapping (key: value lines), got a scalar");
	EXPECT(TVIP("tcp", "{bits: 8}") "    backends:\n"
					"      - {id: 255, address: 10.0.0.1}\n"
					"      - {id: 256, address: 10.0.0.2}\n" /* 10 */
					"      - {id: 300, address: 10.0.0.3}\n",
	       "10: vips[0].backends[1].id: 256 does not fit a ticket of 8 bits (tickets.bits)",
	       "11: vips[0].backends[2].id: 300 does not fit a ticket of 8 bits (tickets.bits)");
	EXPECT(TVIP("tcp", "{bits: 2}") "    backends: [{id: 4, address: 10.0.0.1}]\n",
	       "8: vips[0].backends[0].id: 4 does not fit a ticket of 2 bits (tickets.bits)");

#define BODY                                                                                     \
	"vips:\n"                                                                                \
	"  - {name: w, address: 198.51.100.1, port: 80, protocol: tcp, backends: [{id: 1, "      \
	"address: 10.0.0.1}]}\n"                                                                 \
	"  - {name: t, address: 198.51.100.1, port: 443, protocol: tcp, tickets: {}, backends: " \
	"[{id: 1, address: 10.0.0.1}]}\n"                                                        \
	"lb_sources: [10.9.0.0/24]\n"
	/* A backend keys its tickets under hash_key: it needs one, and not a published one. */
	load_text_for(BODY, FP_CONFIG_FOR_BACKEND, &r);
	assert_int_equal(r.ret, -EINVAL);
	assert_string_equal(
		strstr(r.errors, "for.yaml:"),
		"for.yaml:1: hash_key: missing: vips[1] (t) has tickets (line 3), keyed "
		"under the hash key\n");
	result_free(&r);
	load_text_for("hash_key: 000102030405060708090a0b0c0d0e0f\n" BODY, FP_CONFIG_FOR_BACKEND,
		      &r);
	assert_int_equal(r.ret, -EINVAL);
	assert_non_null(strstr(r.errors, "for.yaml:1: hash_key: is a key published with flowpin "
					 "(the example's or the lab's): vips[1] (t) has tickets, "
					 "and whoever knows the key can read and forge them"));
	result_free(&r);
	load_text_for("hash_key: 000102030405060708090a0b0c0d0e0f\nallow_example_key: true\n" BODY,
		      FP_CONFIG_FOR_BACKEND, &r);
	assert_int_equal(r.ret, 0);
	result_free(&r);
	load_text_for("hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\n" BODY, FP_CONFIG_FOR_BACKEND,
		      &r);
	if (r.ret)
		fail_msg("%s", r.errors);
	assert_true(r.cfg->have_hash_key);
	result_free(&r);
	/* A fleet check says it once, as the LB's rule. */
	load_text_for(BODY, FP_CONFIG_FOR_FLEET, &r);
	assert_string_equal(strstr(r.errors, "for.yaml:"),
			    "for.yaml:1: hash_key: missing (required)\n");
	result_free(&r);
#undef BODY
#undef TVIP
}

/* A key file others can read is named, with the fix; it still loads. */
static void test_key_file_mode(void **state)
{
	static const struct {
		mode_t mode;
		const char *who; /* NULL: no warning */
	} cases[] = { { 0600, NULL },
		      { 0400, NULL },
		      { 0640, "its group" },
		      { 0644, "every user" },
		      { 0604, "every user" } };
	const char *path = write_file("mode.yaml", VALID_HEAD);
	char want[600];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct load_result r;

		assert_int_equal(chmod(path, cases[i].mode), 0);
		load(path, &r);
		assert_int_equal(r.ret, 0);
		assert_non_null(r.cfg);
		if (!cases[i].who) {
			assert_string_equal(r.errors, "");
		} else {
			snprintf(want, sizeof(want),
				 "%1$s:1: hash_key: warning: %1$s is readable by %2$s (mode "
				 "%3$04o): "
				 "the hash key is the fleet's secret; chmod 600 %1$s\n",
				 path, cases[i].who, (unsigned int)cases[i].mode);
			assert_string_equal(r.errors, want);
		}
		result_free(&r);
	}
	/* Published keys are no secret: no warning (the LB refuses them anyway). */
	path = write_file("published.yaml",
			  "hash_key: 000102030405060708090a0b0c0d0e0f\n"
			  "allow_example_key: true\n"
			  "vips: [{name: w, address: 198.51.100.1, port: 80, "
			  "protocol: tcp, backends: [{id: 1, address: 10.0.0.1}]}]\n");
	assert_int_equal(chmod(path, 0644), 0);
	{
		struct load_result r;

		load(path, &r);
		assert_int_equal(r.ret, 0);
		assert_string_equal(r.errors, "");
		result_free(&r);
	}
}

/*
 * The pinning modes and backend states come from one table each (flowpin/pinning.h,
 * FP_BACKEND_STATES): every name the config accepts loads as its value, and each mode
 * has the Maglev table, session table and second chance docs/design.md lists.
 */
static void test_mode_and_state_tables(void **state)
{
	static const struct {
		enum fp_pinning mode;
		const char *name;
		int maglev, sessions, second_chance;
	} modes[] = {
		{ FP_PIN_NONE, "none", 0, 0, 0 }, { FP_PIN_TABLE, "table", 0, 1, 0 },
		{ FP_PIN_HASH, "hash", 1, 0, 0 }, { FP_PIN_HASH_TABLE, "hash+table", 1, 1, 0 },
		{ FP_PIN_FULL, "full", 1, 1, 1 },
	};
	char text[1024];
	struct load_result r;

	(void)state;
	assert_int_equal(FP_PIN__COUNT, sizeof(modes) / sizeof(modes[0]));
	assert_int_equal(FP_BACKEND_STATE__COUNT, 3);
	for (size_t i = 0; i < FP_PIN__COUNT; i++) {
		assert_string_equal(fp_pinning_names[modes[i].mode], modes[i].name);
		assert_int_equal(fp_pinning_uses_maglev(modes[i].mode), modes[i].maglev);
		assert_int_equal(fp_pinning_uses_sessions(modes[i].mode), modes[i].sessions);
		assert_int_equal(fp_pinning_second_chance(modes[i].mode), modes[i].second_chance);
		snprintf(text, sizeof(text), VALID_HEAD "    pinning: %s\n", modes[i].name);
		load(write_file("mode.yaml", text), &r);
		if (r.ret)
			fail_msg("pinning %s rejected: %s", modes[i].name, r.errors);
		assert_int_equal(r.cfg->vips[0].pinning, modes[i].mode);
		result_free(&r);
	}
	assert_false(fp_pinning_uses_maglev(FP_PIN__COUNT + 40));
	assert_string_equal(fp_pinning_name((enum fp_pinning)FP_PIN__COUNT), "?");
	for (size_t i = 0; i < FP_BACKEND_STATE__COUNT; i++) {
		snprintf(text, sizeof(text), VALID_HEAD "        state: %s\n",
			 fp_backend_state_names[i]);
		load(write_file("state.yaml", text), &r);
		if (r.ret)
			fail_msg("state %s rejected: %s", fp_backend_state_names[i], r.errors);
		assert_int_equal(r.cfg->vips[0].backends[0].state, i);
		result_free(&r);
	}
}

static void test_names(void **state)
{
	struct fp_addr a;
	char buf[64];

	(void)state;
	assert_string_equal(fp_pinning_name(FP_PIN_HASH_TABLE), "hash+table");
	assert_string_equal(fp_pinning_name(FP_PIN_FULL), "full");
	assert_string_equal(fp_backend_state_name(FP_BACKEND_DRAINING), "draining");
	assert_int_equal(fp_addr_parse("10.1.2.3", &a), 0);
	assert_true(fp_addr_v4(&a));
	assert_string_equal(fp_addr_str(&a, buf, sizeof(buf)), "10.1.2.3");
	assert_int_equal(fp_addr_parse("::ffff:10.1.2.3", &a), 0);
	assert_true(fp_addr_v4(&a)); /* the mapped form is the IPv4 address */
	assert_int_equal(fp_addr_parse("2001:db8::1", &a), 0);
	assert_string_equal(fp_addr_str(&a, buf, sizeof(buf)), "2001:db8::1");
	assert_int_equal(fp_addr_parse("10.1", &a), -EINVAL);
	assert_int_equal(fp_addr_parse("010.1.2.3", &a), -EINVAL);
	assert_int_equal(fp_addr_parse("", &a), -EINVAL);
}

/* quic_lb (docs/quic-lb.md): the fields as loaded, plaintext and encrypted. */
static void test_quic_lb_config(void **state)
{
	const char *text = VIP_HEAD
		"  - name: quic\n"
		"    address: 192.0.2.1\n"
		"    port: 443\n"
		"    protocol: udp\n"
		"    quic_lb: {config_id: 6, server_id_len: 3, nonce_len: 16,\n" /* line 7 */
		"              key: 8F95F09245765F80256934E50C66207F}\n"
		"    backends:\n"
		"      - {id: 1, address: 10.0.0.1, server_id: '0a0b0c'}\n"
		"      - {id: 2, address: 10.0.0.2, server_id: FFFFFF}\n"
		"  - name: plain\n"
		"    address: 192.0.2.1\n"
		"    port: 8443\n"
		"    protocol: udp\n"
		"    quic_lb: {server_id_len: 1, nonce_len: 4}\n"
		"    backends:\n"
		"      - {id: 1, address: 10.0.0.1, server_id: 00}\n"
		"  - name: other\n"
		"    address: 192.0.2.1\n"
		"    port: 53\n"
		"    protocol: udp\n" ONE_BACKEND;
	static const __u8 key[16] = { 0x8f, 0x95, 0xf0, 0x92, 0x45, 0x76, 0x5f, 0x80,
				      0x25, 0x69, 0x34, 0xe5, 0x0c, 0x66, 0x20, 0x7f };
	static const __u8 sid1[FP_QUICLB_MAX_SID] = { 0x0a, 0x0b, 0x0c };
	static const __u8 sid2[FP_QUICLB_MAX_SID] = { 0xff, 0xff, 0xff };
	static const __u8 zero[FP_QUICLB_MAX_SID];
	struct load_result r;

	(void)state;
	load(write_file("quic.yaml", text), &r);
	if (r.ret)
		fail_msg("valid file rejected: %s", r.errors);
	const struct fp_vip_cfg *q = &r.cfg->vips[0], *p = &r.cfg->vips[1], *o = &r.cfg->vips[2];

	assert_true(q->has_quic_lb);
	assert_int_equal(q->quic_lb_line, 7);
	assert_int_equal(q->quic_lb.config_id, 6);
	assert_int_equal(q->quic_lb.server_id_len, 3);
	assert_int_equal(q->quic_lb.nonce_len, 16);
	assert_true(q->quic_lb.encrypted);
	assert_memory_equal(q->quic_lb.key, key, 16);
	assert_memory_equal(q->backends[0].server_id, sid1, FP_QUICLB_MAX_SID);
	assert_memory_equal(q->backends[1].server_id, sid2, FP_QUICLB_MAX_SID);
	assert_true(p->has_quic_lb);
	assert_int_equal(p->quic_lb.config_id, 0); /* the default */
	assert_false(p->quic_lb.encrypted);	   /* no key: plaintext */
	assert_memory_equal(p->quic_lb.key, zero, 16);
	assert_memory_equal(p->backends[0].server_id, zero, FP_QUICLB_MAX_SID);
	assert_false(o->has_quic_lb);
	assert_int_equal(fp_quiclb_cfg_check(&q->quic_lb), 0);
	/* The draft's key is published: a warning (the file loads), as for the mode. */
	assert_non_null(strstr(r.errors, ":7: vips[0].quic_lb.key: warning: is a key published "
					 "with flowpin or the QUIC-LB draft"));
	result_free(&r);
}

/* A QUIC-LB key of its own in a file others may read: a warning naming the file. */
static void test_quic_lb_key_mode(void **state)
{
	const char *path = write_file(
		"quic-mode.yaml", "lb_sources: [10.9.0.0/24]\n"
				  "vips:\n"
				  "  - name: q\n"
				  "    address: 192.0.2.1\n"
				  "    port: 443\n"
				  "    protocol: udp\n"
				  "    quic_lb: {server_id_len: 1, nonce_len: 15,\n" /* 7 */
				  "              key: 0f1e2d3c4b5a69788796a5b4c3d2e1f0}\n"
				  "    backends: [{id: 1, address: 10.0.0.1, server_id: '01'}]\n");
	struct load_result r;
	char want[600];

	(void)state;
	assert_int_equal(chmod(path, 0640), 0);
	{
		FILE *err = open_memstream(&r.errors, &r.errors_len);

		r.ret = fp_config_load_for(path, FP_CONFIG_FOR_BACKEND, &r.cfg, err);
		fclose(err);
	}
	assert_int_equal(r.ret, 0);
	snprintf(want, sizeof(want),
		 "%1$s:7: vips[0].quic_lb.key: warning: %1$s is readable by its group (mode "
		 "0640): the QUIC-LB key is a secret; chmod 600 %1$s\n",
		 path);
	assert_string_equal(r.errors, want);
	result_free(&r);
	assert_int_equal(chmod(path, 0600), 0);
	{
		FILE *err = open_memstream(&r.errors, &r.errors_len);

		r.ret = fp_config_load_for(path, FP_CONFIG_FOR_BACKEND, &r.cfg, err);
		fclose(err);
	}
	assert_int_equal(r.ret, 0);
	assert_string_equal(r.errors, "");
	result_free(&r);
}

#define UDP_VIP	     "  - name: q\n    address: 192.0.2.1\n    port: 443\n    protocol: udp\n"
#define QUIC_BACKEND "    backends: [{id: 1, address: 10.0.0.1, server_id: '01'}]\n"

static void test_quic_lb_errors(void **state)
{
	(void)state;
	/* The draft's limits, each at its first bad value. */
	EXPECT(VIP_HEAD UDP_VIP
	       "    quic_lb: {config_id: 7, server_id_len: 0, nonce_len: 3, key: 00}\n" /* 7 */
	       QUIC_BACKEND,
	       "7: vips[0].quic_lb.config_id: must be 0..6, got 7 (0b111 marks unroutable "
	       "connection IDs)",
	       "7: vips[0].quic_lb.server_id_len: must be 1..15, got 0",
	       "7: vips[0].quic_lb.nonce_len: must be 4..18, got 3",
	       "7: vips[0].quic_lb.key: must be 32 hex digits (an AES-128 key), got '00' (2 "
	       "characters)");
	EXPECT(VIP_HEAD UDP_VIP
	       "    quic_lb: {config_id: 8, server_id_len: 16, nonce_len: 19, extra: 1}\n" /* 7 */
	       QUIC_BACKEND,
	       "7: vips[0].quic_lb.config_id: must be 0..6, got 8",
	       "7: vips[0].quic_lb.server_id_len: must be 1..15, got 16",
	       "7: vips[0].quic_lb.nonce_len: must be 4..18, got 19",
	       "7: vips[0].quic_lb.extra: unknown key (known: config_id, server_id_len, "
	       "nonce_len, key)");
	/* 15 + 4 and 1 + 18 are the largest; one more octet is a 21-octet CID. */
	EXPECT(VIP_HEAD UDP_VIP
	       "    quic_lb: {server_id_len: 15, nonce_len: 5}\n" /* 7 */
	       "    backends: [{id: 1, address: 10.0.0.1, server_id: "
	       "000102030405060708090a0b0c0d0e}]\n"
	       "  - name: r\n    address: 192.0.2.1\n    port: 444\n    protocol: udp\n"
	       "    quic_lb: {server_id_len: 1, nonce_len: 18}\n" /* 12 */
	       "    backends: [{id: 1, address: 10.0.0.1, server_id: '01'}]\n",
	       "7: vips[0].quic_lb.nonce_len: server_id_len + nonce_len must be at most 19 (a QUIC "
	       "v1 connection ID is at most 20 octets with the first), got 15 + 5");
	EXPECT(VIP_HEAD UDP_VIP "    quic_lb: {nonce_len: 4, key: [1]}\n" /* 7 */ QUIC_BACKEND,
	       "7: vips[0].quic_lb.server_id_len: missing (required)",
	       "7: vips[0].quic_lb.key: must be 32 hex digits, got a list");
	EXPECT(VIP_HEAD UDP_VIP "    quic_lb: 1\n" /* 7 */ QUIC_BACKEND,
	       "7: vips[0].quic_lb: must be a mapping (key: value lines), got a scalar");
	/* TCP VIPs have no QUIC. */
	EXPECT(VIP_HEAD "  - name: t\n    address: 192.0.2.1\n    port: 443\n    protocol: tcp\n"
			"    quic_lb: {server_id_len: 1, nonce_len: 4}\n" /* 7 */
			"    backends: [{id: 1, address: 10.0.0.1, server_id: '01'}]\n",
	       "7: vips[0].quic_lb: only for UDP VIPs (QUIC runs over UDP), this VIP's protocol "
	       "is tcp");
	/* Server IDs: required, exact length, hex, unique within the VIP; not elsewhere. */
	EXPECT(VIP_HEAD UDP_VIP
	       "    quic_lb: {server_id_len: 2, nonce_len: 4}\n" /* 7 */
	       "    backends:\n"
	       "      - {id: 1, address: 10.0.0.1}\n"			   /* 9 */
	       "      - {id: 2, address: 10.0.0.2, server_id: '010'}\n"	   /* 10 */
	       "      - {id: 3, address: 10.0.0.3, server_id: '0g01'}\n"   /* 11 */
	       "      - {id: 4, address: 10.0.0.4, server_id: '010203'}\n" /* 12 */
	       "      - {id: 5, address: 10.0.0.5, server_id: 'aB01'}\n"   /* 13 */
	       "      - {id: 6, address: 10.0.0.6, server_id: 'Ab01'}\n"   /* 14 */
	       "      - {id: 7, address: 10.0.0.7, server_id: {a: 1}}\n"   /* 15 */
	       "      - {id: 8, address: 10.0.0.8, server_id: 'ab01'}\n"   /* 16 */
	       "  - name: plain\n    address: 192.0.2.9\n    port: 53\n    protocol: udp\n"
	       "    backends: [{id: 1, address: 10.0.0.1, server_id: '01'}]\n", /* 21 */
	       "9: vips[0].backends[0].server_id: missing (required: the VIP has quic_lb, line 7)",
	       "10: vips[0].backends[1].server_id: must be 2 octets in hex (4 digits, "
	       "quic_lb.server_id_len), got '010'",
	       "11: vips[0].backends[2].server_id: must be 2 octets in hex (4 digits, "
	       "quic_lb.server_id_len), got '0g01'",
	       "12: vips[0].backends[3].server_id: must be 2 octets in hex (4 digits, "
	       "quic_lb.server_id_len), got '010203'",
	       "14: vips[0].backends[5].server_id: duplicate server_id ab01 (also backends[4], "
	       "line 13)",
	       "15: vips[0].backends[6].server_id: must be hex digits, got a mapping",
	       "16: vips[0].backends[7].server_id: duplicate server_id ab01 (also backends[4], "
	       "line 13)",
	       "21: vips[1].backends[0].server_id: only for backends of a VIP with quic_lb");
	/* The same server ID in two VIPs is fine: each VIP maps its own. */
	const char *two =
		VIP_HEAD UDP_VIP "    quic_lb: {server_id_len: 1, nonce_len: 4}\n"
				 "    backends: [{id: 1, address: 10.0.0.1, server_id: '01'}]\n"
				 "  - name: r\n    address: 192.0.2.1\n    port: 444\n"
				 "    protocol: udp\n"
				 "    quic_lb: {server_id_len: 1, nonce_len: 4}\n"
				 "    backends: [{id: 1, address: 10.0.0.1, server_id: '01'}]\n";
	struct load_result r;

	load(write_file("two.yaml", two), &r);
	if (r.ret)
		fail_msg("valid file rejected: %s", r.errors);
	result_free(&r);
}

/* A fleet of two sites, three backends (one down); the error cases edit it. */
#define POPS_HEAD                                                                   \
	"hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\n"		      /* line 1 */  \
	"pops:\n"						      /* line 2 */  \
	"  - name: a\n"						      /* line 3 */  \
	"    lbs: [10.99.0.11, 10.99.0.12, 'fd00:99::11']\n"	      /* line 4 */  \
	"  - name: b\n"						      /* line 5 */  \
	"    lbs: [10.98.0.11]\n"				      /* line 6 */  \
	"vips:\n"						      /* line 7 */  \
	"  - name: web\n"					      /* line 8 */  \
	"    address: 198.51.100.10\n"				      /* line 9 */  \
	"    port: 443\n"					      /* line 10 */ \
	"    protocol: tcp\n"					      /* line 11 */ \
	"    backends:\n"					      /* line 12 */ \
	"      - {id: 7, address: 10.98.0.21, pop: b}\n"	      /* line 13 */ \
	"      - {id: 1, address: 10.99.0.21, pop: a}\n"	      /* line 14 */ \
	"      - {id: 2, address: 10.99.0.22, pop: a, state: down}\n" /* 15 */

/* `pops`, backends' `pop`, and the view of one site (fp_config_select_pop()). */
static void test_pops(void **state)
{
	struct load_result r;
	FILE *devnull = fopen("/dev/null", "w");
	char *msg = NULL;
	size_t len = 0;
	FILE *err;

	(void)state;
	load(write_file("pops.yaml", POPS_HEAD), &r);
	if (r.ret)
		fail_msg("valid file rejected: %s", r.errors);
	assert_int_equal(r.cfg->n_pops, 2);
	assert_string_equal(r.cfg->pops[0].name, "a");
	assert_int_equal(r.cfg->pops[0].n_lbs, 3);
	assert_int_equal(r.cfg->pops[0].line, 3);
	assert_int_equal(r.cfg->pops[1].n_lbs, 1);
	assert_int_equal(r.cfg->lines.pops, 3);
	assert_int_equal(r.cfg->vips[0].n_backends, 3); /* unselected: every site's */
	assert_int_equal(r.cfg->vips[0].backends[0].pop, 1);
	assert_int_equal(r.cfg->vips[0].backends[1].pop, 0);
	assert_false(r.cfg->pop_selected);

	/* --pop missing, unknown: refused, nothing changed. */
	err = open_memstream(&msg, &len);
	assert_int_equal(fp_config_select_pop(r.cfg, NULL, err), -EINVAL);
	assert_int_equal(fp_config_select_pop(r.cfg, "c", err), -EINVAL);
	fclose(err);
	assert_non_null(strstr(msg, ":3: pops: the config is a fleet of sites (a, b): --pop NAME "
				    "is required\n"));
	assert_non_null(strstr(msg, ":3: pops: --pop c: no such site (sites: a, b)\n"));
	free(msg);
	assert_int_equal(r.cfg->vips[0].n_backends, 3);
	assert_int_equal(r.cfg->vips[0].n_remote, 0);

	/* Site a: its two backends, in file order, then b's. */
	assert_int_equal(fp_config_select_pop(r.cfg, "a", devnull), 0);
	assert_true(r.cfg->pop_selected);
	assert_int_equal(r.cfg->local_pop, 0);
	assert_int_equal(r.cfg->vips[0].n_backends, 2);
	assert_int_equal(r.cfg->vips[0].n_remote, 1);
	assert_int_equal(r.cfg->vips[0].backends[0].id, 1);
	assert_int_equal(r.cfg->vips[0].backends[1].id, 2);
	assert_int_equal(r.cfg->vips[0].backends[2].id, 7);
	assert_int_equal(r.cfg->vips[0].backends[2].pop, 1);
	assert_int_equal(fp_config_select_pop(r.cfg, "a", devnull), 0); /* again: the same */
	assert_int_equal(fp_config_select_pop(r.cfg, "b", devnull), -EINVAL);
	/* Its tables are site a's alone. */
	{
		__u16 *owners = calloc(r.cfg->table_size, sizeof(*owners));

		assert_non_null(owners);
		assert_int_equal(fp_maglev_build_vip(r.cfg, &r.cfg->vips[0], owners), 0);
		for (__u32 i = 0; i < r.cfg->table_size; i++)
			assert_int_equal(owners[i], 1); /* 2 is down, 7 is site b's */
		free(owners);
	}
	result_free(&r);

	/* A file without pops: --pop refused, no --pop fine. */
	load(write_file("nopops.yaml", VALID_HEAD), &r);
	assert_int_equal(r.ret, 0);
	assert_int_equal(fp_config_select_pop(r.cfg, NULL, devnull), 0);
	assert_int_equal(fp_config_select_pop(r.cfg, "a", devnull), -EINVAL);
	assert_int_equal(r.cfg->vips[0].n_backends, 1);
	result_free(&r);
	fclose(devnull);
}

static void test_pops_errors(void **state)
{
	(void)state;
	/* A backend without `pop`, one naming no site, `pop` without `pops`. */
	EXPECT(POPS_HEAD "      - {id: 3, address: 10.99.0.23}\n"
			 "      - {id: 4, address: 10.99.0.24, pop: c}\n"
			 "      - {id: 5, address: 10.99.0.25, pop: [a]}\n",
	       "16: vips[0].backends[3].pop: missing (required: the config has `pops`, every "
	       "backend names its site)",
	       "17: vips[0].backends[4].pop: no site named 'c' in pops (sites: a, b)",
	       "18: vips[0].backends[5].pop: must be a site name, got a list");
	EXPECT(VALID_HEAD "        pop: a\n",
	       "10: vips[0].backends[0].pop: the config has no `pops`: a backend's site is named "
	       "only in a fleet of sites");
	/* Names, repeats, addresses. */
	EXPECT("hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\n"
	       "pops:\n"
	       "  - name: a\n"
	       "    lbs: [10.99.0.11, 10.99.0.11]\n"
	       "  - name: a\n"
	       "    lbs: [10.98.0.11, 224.0.0.1, 10.99.0.11, 198.51.100.10]\n"
	       "  - name: 'bad name'\n"
	       "    lbs: []\n"
	       "  - name: 0123456789012345678901234567890123\n"
	       "  - lbs: 10.1.1.1\n"
	       "    colour: red\n"
	       "vips:\n"
	       "  - name: web\n"
	       "    address: 198.51.100.10\n"
	       "    port: 443\n"
	       "    protocol: tcp\n"
	       "    backends: [{id: 1, address: 10.99.0.21, pop: a}]\n",
	       "4: pops[0].lbs[1]: duplicate LB address 10.99.0.11 (also pops[0] 'a', line 3)",
	       "5: pops[1].name: duplicate site 'a' (also pops[0], line 3)",
	       "6: pops[1].lbs[1]: must be a unicast address, got '224.0.0.1'",
	       "6: pops[1].lbs[2]: duplicate LB address 10.99.0.11 (also pops[0] 'a', line 3)",
	       "6: pops[1].lbs: 198.51.100.10 is the address of vips[0] (web, line 13): an LB "
	       "node's cross-site address cannot be a VIP",
	       "7: pops[2].name: must be 1..31 characters of A-Z a-z 0-9 . _ -, got 'bad name'",
	       "8: pops[2].lbs: 1..16 LB node addresses, got 0",
	       "9: pops[3].name: must be 1..31 characters of A-Z a-z 0-9 . _ -, got "
	       "'0123456789012345678901234567890123'",
	       "9: pops[3].lbs: missing (required)", "10: pops[4].name: missing (required)",
	       "10: pops[4].lbs: must be a list of addresses",
	       "11: pops[4].colour: unknown key (known: name, lbs)");
	EXPECT(VALID_HEAD "pops: []\n", "10: pops: 1..16 sites, got 0");
	EXPECT(VALID_HEAD "pops: {a: 1}\n", "10: pops: must be a list of sites");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_full_file),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_example_file_is_valid),
		cmocka_unit_test(test_top_level_errors),
		cmocka_unit_test(test_timeouts_and_sources),
		cmocka_unit_test(test_sessions_errors),
		cmocka_unit_test(test_vip_errors),
		cmocka_unit_test(test_duplicate_vips),
		cmocka_unit_test(test_backend_errors),
		cmocka_unit_test(test_health_config),
		cmocka_unit_test(test_health_errors),
		cmocka_unit_test(test_bgp_config),
		cmocka_unit_test(test_bgp_errors),
		cmocka_unit_test(test_every_error_in_line_order),
		cmocka_unit_test(test_yaml_level_errors),
		cmocka_unit_test(test_missing_and_unreadable_files),
		cmocka_unit_test(test_permission_denied),
		cmocka_unit_test(test_shuffled_config_same_tables),
		cmocka_unit_test(test_damaged_files),
		cmocka_unit_test(test_yaml_errors_at_their_line),
		cmocka_unit_test(test_nul_bytes_refused),
		cmocka_unit_test(test_lb_and_backend_limits),
		cmocka_unit_test(test_setting_lines),
		cmocka_unit_test(test_size_and_depth_caps),
		cmocka_unit_test(test_hash_key_rules),
		cmocka_unit_test(test_tickets),
		cmocka_unit_test(test_key_file_mode),
		cmocka_unit_test(test_mode_and_state_tables),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_quic_lb_config),
		cmocka_unit_test(test_quic_lb_errors),
		cmocka_unit_test(test_quic_lb_key_mode),
		cmocka_unit_test(test_pops),
		cmocka_unit_test(test_pops_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
