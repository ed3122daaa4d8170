// SPDX-License-Identifier: MIT
/*
 * The etcd client (lib/etcd.c) against a real etcd (Debian's etcd-server), started here
 * in a temporary directory on private loopback ports and killed at the end: reads,
 * prefixes, transactions with compare-and-swap, leases, watches (change, timeout, stop,
 * compaction), endpoint failover, authentication; and a config held in etcd through the
 * file's parser (errors name the key). Without /usr/bin/etcd every test is skipped and
 * says why.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <flowpin/config.h>
#include <flowpin/etcd.h>
#include <flowpin/fleet.h>
#include <flowpin/log.h>

#define ETCD "/usr/bin/etcd"

static char dir[64];
static pid_t etcd_pid;
static int client_port;
static char url[128];

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    !getsockname(fd, (struct sockaddr *)&sa, &len))
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int start_etcd(void **state)
{
	int peer_port = free_port();
	char log[96];

	(void)state;
	if (access(ETCD, X_OK)) {
		printf("# %s not installed (Debian: etcd-server): every etcd test skipped\n", ETCD);
		return 0;
	}
	snprintf(dir, sizeof(dir), "/tmp/flowpin-test-etcd.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	client_port = free_port();
	snprintf(log, sizeof(log), "%s/etcd.log", dir);
	etcd_pid = fork();
	if (etcd_pid == 0) {
		char data[96], listen_c[64], listen_p[64], cluster[96];

		snprintf(data, sizeof(data), "%s/data", dir);
		snprintf(listen_c, sizeof(listen_c), "http://127.0.0.1:%d", client_port);
		snprintf(listen_p, sizeof(listen_p), "http://127.0.0.1:%d", peer_port);
		snprintf(cluster, sizeof(cluster), "t=%s", listen_p);
		/* The test aborting (a failed assertion, a sanitizer report) must not leave
		 * etcd running: it would hold the test's files and inherited locks. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(127);
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		if (!freopen(log, "w", stdout) || !freopen(log, "a", stderr))
			_exit(127);
		/* Small: the test machine is shared. */
		execl(ETCD, ETCD, "--name", "t", "--data-dir", data, "--listen-client-urls",
		      listen_c, "--advertise-client-urls", listen_c, "--listen-peer-urls", listen_p,
		      "--initial-advertise-peer-urls", listen_p, "--initial-cluster", cluster,
		      "--quota-backend-bytes", "67108864", "--snapshot-count", "1000",
		      (char *)NULL);
		_exit(127);
	}
	if (etcd_pid < 0)
		return -1;
	snprintf(url, sizeof(url), "etcd://127.0.0.1:%d/test", client_port);
	for (int i = 0; i < 150; i++) {
		if (!run("curl -sf -m 1 http://127.0.0.1:%d/health >/dev/null 2>&1", client_port))
			return 0;
		usleep(100 * 1000);
	}
	printf("# etcd did not become healthy; its log:\n");
	run("sed 's/^/# /' %s | tail -20", log);
	return -1;
}

static int stop_etcd(void **state)
{
	(void)state;
	if (etcd_pid > 0) {
		kill(etcd_pid, SIGTERM);
		waitpid(etcd_pid, NULL, 0);
	}
	if (dir[0])
		run("rm -rf '%s'", dir);
	return 0;
}

#define NEED_ETCD()                                                    \
	do {                                                           \
		if (etcd_pid <= 0) {                                   \
			printf("# skipped: %s not installed\n", ETCD); \
			skip();                                        \
		}                                                      \
	} while (0)

static struct fp_etcd *client(const char *u)
{
	struct fp_etcd_target t;
	char why[160];
	struct fp_etcd *e;

	assert_int_equal(fp_etcd_parse_url(u, &t, why, sizeof(why)), 0);
	e = fp_etcd_new(&t, NULL);
	assert_non_null(e);
	return e;
}

static void test_parse_url(void **state)
{
	static const struct {
		const char *url;
		int n_endpoints;
		const char *prefix, *why;
	} cases[] = {
		{ "etcd://127.0.0.1:2379/fleet", 1, "/fleet", NULL },
		{ "etcd://a:1,b:2,[fd00::1]:3/fleet/site-a/", 3, "/fleet/site-a", NULL },
		{ "etcd://a:1/", 0, NULL, "no PREFIX" },
		{ "etcd://a:1", 0, NULL, "expected etcd://" },
		{ "etcd://a/x", 0, NULL, "expected HOST:PORT" },
		{ "etcd://a:x1/x", 0, NULL, "not a number" },
		{ "etcd://a:1,/x", 0, NULL, "empty endpoint" },
		{ "etcd://a:1/x y", 0, NULL, "printable" },
		{ "etcd://a:1/x//y", 0, NULL, "printable" },
		{ "etcd://a b:1/x", 0, NULL, "not a host" },
		{ "http://a:1/x", 0, NULL, "not an etcd" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct fp_etcd_target t;
		char why[160] = "";
		int err = fp_etcd_parse_url(cases[i].url, &t, why, sizeof(why));

		printf("# %s -> %d %s\n", cases[i].url, err, why);
		if (cases[i].why) {
			assert_int_equal(err, -EINVAL);
			assert_non_null(strstr(why, cases[i].why));
		} else {
			assert_int_equal(err, 0);
			assert_int_equal(t.n_endpoints, cases[i].n_endpoints);
			assert_string_equal(t.prefix, cases[i].prefix);
		}
	}
}

static void test_get_put_prefix(void **state)
{
	struct fp_etcd_kv *kvs;
	struct fp_etcd *e;
	int64_t rev = 0;
	size_t n;

	(void)state;
	NEED_ETCD();
	e = client(url);
	assert_int_equal(fp_etcd_get(e, "/test/kv/none", false, &kvs, &n, &rev), 0);
	assert_int_equal(n, 0);
	assert_null(kvs);
	assert_true(rev >= 1);
	/* Binary values with NUL bytes survive base64 both ways. */
	assert_int_equal(fp_etcd_put(e, "/test/kv/a", "x\0y", 3, 0), 0);
	assert_int_equal(fp_etcd_put(e, "/test/kv/b", "", 0, 0), 0);
	assert_int_equal(fp_etcd_put(e, "/test/kw", "other", 5, 0), 0);
	assert_int_equal(fp_etcd_get(e, "/test/kv/", true, &kvs, &n, &rev), 0);
	assert_int_equal(n, 2);
	assert_string_equal(kvs[0].key, "/test/kv/a");
	assert_int_equal(kvs[0].len, 3);
	assert_memory_equal(kvs[0].value, "x\0y", 3);
	assert_string_equal(kvs[1].key, "/test/kv/b");
	assert_int_equal(kvs[1].len, 0);
	assert_true(kvs[1].mod_revision > kvs[0].mod_revision);
	assert_int_equal(rev, kvs[1].mod_revision + 1);
	fp_etcd_kvs_free(kvs, n);
	fp_etcd_free(e);
}

static void test_txn_compare_and_swap(void **state)
{
	const struct fp_etcd_op put = { FP_ETCD_PUT, "/test/cas", "one", 3, 0 };
	const struct fp_etcd_op put2 = { FP_ETCD_PUT, "/test/cas", "two", 3, 0 };
	struct fp_etcd_compare absent = { "/test/cas", 0 }, base;
	struct fp_etcd_kv *kvs;
	struct fp_etcd *e;
	int64_t rev, first;
	size_t n;

	(void)state;
	NEED_ETCD();
	e = client(url);
	/* Created only if absent; a second create is stale. */
	assert_int_equal(fp_etcd_txn(e, &absent, 1, &put, 1, &first), 0);
	assert_int_equal(fp_etcd_txn(e, &absent, 1, &put2, 1, &rev), -ESTALE);
	assert_non_null(strstr(fp_etcd_error(e), "nothing written"));
	/* Based on the current revision: written. Based on that one again: stale. */
	base = (struct fp_etcd_compare){ "/test/cas", first };
	assert_int_equal(fp_etcd_txn(e, &base, 1, &put2, 1, &rev), 0);
	assert_true(rev > first);
	assert_int_equal(fp_etcd_txn(e, &base, 1, &put, 1, NULL), -ESTALE);
	assert_int_equal(fp_etcd_get(e, "/test/cas", false, &kvs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal((char *)kvs[0].value, "two");
	assert_int_equal(kvs[0].mod_revision, rev);
	fp_etcd_kvs_free(kvs, n);
	/* Several ops, one of them a prefix delete, all or nothing. */
	{
		const struct fp_etcd_op ops[] = {
			{ FP_ETCD_PUT, "/test/cas/x", "1", 1, 0 },
			{ FP_ETCD_PUT, "/test/cas/y", "2", 1, 0 },
		};
		const struct fp_etcd_op del = { FP_ETCD_DELETE_PREFIX, "/test/cas/", NULL, 0, 0 };
		struct fp_etcd_compare now = { "/test/cas", rev };

		assert_int_equal(fp_etcd_txn(e, &now, 1, ops, 2, NULL), 0);
		assert_int_equal(fp_etcd_get(e, "/test/cas/", true, &kvs, &n, NULL), 0);
		assert_int_equal(n, 2);
		fp_etcd_kvs_free(kvs, n);
		assert_int_equal(fp_etcd_txn(e, NULL, 0, &del, 1, NULL), 0);
		assert_int_equal(fp_etcd_get(e, "/test/cas/", true, &kvs, &n, NULL), 0);
		assert_int_equal(n, 0);
	}
	fp_etcd_free(e);
}

static void test_lease(void **state)
{
	struct fp_etcd_kv *kvs;
	struct fp_etcd *e;
	int64_t id = 0;
	size_t n;

	(void)state;
	NEED_ETCD();
	e = client(url);
	assert_int_equal(fp_etcd_lease_grant(e, 30, &id), 0);
	assert_true(id != 0);
	assert_int_equal(fp_etcd_lease_keepalive(e, id), 0);
	const struct fp_etcd_op put = { FP_ETCD_PUT, "/test/status/n1", "{}", 2, id };

	assert_int_equal(fp_etcd_txn(e, NULL, 0, &put, 1, NULL), 0);
	assert_int_equal(fp_etcd_get(e, "/test/status/n1", false, &kvs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(kvs[0].lease, id);
	fp_etcd_kvs_free(kvs, n);
	/* A lease etcd does not know (expired, or never granted). */
	assert_int_equal(fp_etcd_lease_keepalive(e, id ^ 0x5555), -ENOENT);
	/* A put under it is refused by etcd. */
	const struct fp_etcd_op bad = { FP_ETCD_PUT, "/test/status/n2", "{}", 2, id ^ 0x5555 };

	assert_int_equal(fp_etcd_txn(e, NULL, 0, &bad, 1, NULL), -EIO);
	printf("# %s\n", fp_etcd_error(e));
	assert_non_null(strstr(fp_etcd_error(e), "lease not found"));
	fp_etcd_free(e);
}

static bool stop_now(void *arg)
{
	(void)arg;
	return true;
}

static void test_watch(void **state)
{
	struct fp_etcd_kv *kvs;
	struct fp_etcd *e;
	int64_t rev;
	size_t n;

	(void)state;
	NEED_ETCD();
	e = client(url);
	assert_int_equal(fp_etcd_put(e, "/test/w/config", "a", 1, 0), 0);
	assert_int_equal(fp_etcd_get(e, "/test/w/", true, &kvs, &n, &rev), 0);
	fp_etcd_kvs_free(kvs, n);
	/* Nothing after rev: the watch times out. */
	assert_int_equal(fp_etcd_watch(e, "/test/w/", true, rev + 1, 300, NULL, NULL), 0);
	/* A change under the prefix since rev, made before the watch: seen. */
	assert_int_equal(fp_etcd_put(e, "/test/w/config.canary", "b", 1, 0), 0);
	assert_int_equal(fp_etcd_watch(e, "/test/w/", true, rev + 1, 2000, NULL, NULL), 1);
	/* Another key (outside the prefix) does not wake a watch. */
	assert_int_equal(fp_etcd_get(e, "/test/w/", true, &kvs, &n, &rev), 0);
	fp_etcd_kvs_free(kvs, n);
	assert_int_equal(fp_etcd_put(e, "/test/wx", "c", 1, 0), 0);
	assert_int_equal(fp_etcd_watch(e, "/test/w/", true, rev + 1, 300, NULL, NULL), 0);
	/* Asked to stop. */
	assert_int_equal(fp_etcd_watch(e, "/test/w/", true, rev + 1, 5000, stop_now, NULL), -EINTR);
	/* From a compacted revision: told so. */
	assert_int_equal(run("curl -sf -m 2 http://127.0.0.1:%d/v3/kv/compaction -d "
			     "'{\"revision\":\"%lld\"}' >/dev/null",
			     client_port, (long long)rev),
			 0);
	assert_int_equal(fp_etcd_watch(e, "/test/w/", true, 2, 2000, NULL, NULL), -ESTALE);
	fp_etcd_free(e);
}

static void test_failover(void **state)
{
	char u[160];
	struct fp_etcd_kv *kvs;
	struct fp_etcd *e;
	size_t n;
	int dead = free_port();

	(void)state;
	NEED_ETCD();
	/* The first endpoint refuses: the second answers, and stays the one used. */
	snprintf(u, sizeof(u), "etcd://127.0.0.1:%d,127.0.0.1:%d/test", dead, client_port);
	e = client(u);
	assert_int_equal(fp_etcd_get(e, "/test/kv/a", false, &kvs, &n, NULL), 0);
	assert_int_equal(n, 1);
	fp_etcd_kvs_free(kvs, n);
	snprintf(u, sizeof(u), "127.0.0.1:%d", client_port);
	assert_string_equal(fp_etcd_endpoint(e), u);
	fp_etcd_free(e);
	/* None answers. */
	snprintf(u, sizeof(u), "etcd://127.0.0.1:%d/test", dead);
	e = client(u);
	assert_int_equal(fp_etcd_get(e, "/test/kv/a", false, &kvs, &n, NULL), -EHOSTUNREACH);
	printf("# %s\n", fp_etcd_error(e));
	assert_non_null(strstr(fp_etcd_error(e), "127.0.0.1"));
	assert_int_equal(fp_etcd_watch(e, "/test/", true, 1, 500, NULL, NULL), -EHOSTUNREACH);
	fp_etcd_free(e);
}

static void print_lines(const char *text)
{
	for (const char *p = text; *p;) {
		size_t len = strcspn(p, "\n");

		printf("# %.*s\n", (int)len, p);
		p += len + (p[len] == '\n');
	}
}

/* The fleet config in etcd goes through the file's parser; messages name the key. */
static void test_config_from_etcd(void **state)
{
	static const char bad_yaml[] = "hash_key: 00112233445566778899aabbccddeeff\n"
				       "vips:\n"
				       "  - name: web\n"
				       "    address: [10.0.0.1\n";
	static const char bad_field[] = "hash_key: 00112233445566778899aabbccddeeff\n"
					"lb_sources: [10.0.0.0/24]\n"
					"vips:\n"
					"  - name: web\n"
					"    address: 10.0.0.1\n"
					"    port: 80\n"
					"    protocol: tcp\n"
					"    backends:\n"
					"      - {id: 1, address: 10.0.1.1, weight: 0}\n";
	struct fp_etcd_kv *kvs;
	struct fp_config *cfg = NULL;
	struct fp_etcd *e;
	char name[200], *text = NULL;
	size_t n, len = 0;
	FILE *err;

	(void)state;
	NEED_ETCD();
	e = client(url);
	snprintf(name, sizeof(name), "%s/config", url);
	assert_int_equal(fp_etcd_put(e, "/test/config", bad_yaml, sizeof(bad_yaml) - 1, 0), 0);
	assert_int_equal(fp_etcd_get(e, "/test/config", false, &kvs, &n, NULL), 0);
	err = open_memstream(&text, &len);
	assert_int_equal(fp_config_load_buffer(name, kvs[0].value, kvs[0].len, FP_CONFIG_FOR_FLEET,
					       &cfg, err),
			 -EINVAL);
	fclose(err);
	print_lines(text);
	assert_null(cfg);
	assert_true(!strncmp(text, name, strlen(name)) && text[strlen(name)] == ':');
	assert_non_null(strstr(text, ": yaml: "));
	free(text);
	fp_etcd_kvs_free(kvs, n);

	assert_int_equal(fp_etcd_put(e, "/test/config", bad_field, sizeof(bad_field) - 1, 0), 0);
	assert_int_equal(fp_etcd_get(e, "/test/config", false, &kvs, &n, NULL), 0);
	err = open_memstream(&text, &len);
	assert_int_equal(fp_config_load_buffer(name, kvs[0].value, kvs[0].len, FP_CONFIG_FOR_FLEET,
					       &cfg, err),
			 -EINVAL);
	fclose(err);
	print_lines(text);
	snprintf(name + strlen(name), sizeof(name) - strlen(name),
		 ":9: vips[0].backends[0].weight: ");
	assert_non_null(strstr(text, name));
	free(text);
	fp_etcd_kvs_free(kvs, n);
	fp_etcd_free(e);
}

/* Which config a node runs: the canary only when listed and present. */
static void test_fleet_pick(void **state)
{
	struct fp_etcd_kv kvs[] = {
		{ "/f/config", (unsigned char *)"main", 4, 1, 5, 0 },
		{ "/f/config.canary", (unsigned char *)"staged", 6, 6, 6, 0 },
		{ "/f/config.canary.nodes", (unsigned char *)"lb1\nlb-2, lb3", 14, 6, 6, 0 },
	};
	bool canary;

	(void)state;
	assert_int_equal(fp_fleet_pick(kvs, 3, "/f", "lb1", &canary), 1);
	assert_true(canary);
	assert_int_equal(fp_fleet_pick(kvs, 3, "/f", "lb-2", &canary), 1);
	assert_int_equal(fp_fleet_pick(kvs, 3, "/f", "lb3", &canary), 1);
	/* A prefix of a listed name is not listed. */
	assert_int_equal(fp_fleet_pick(kvs, 3, "/f", "lb", &canary), 0);
	assert_false(canary);
	assert_int_equal(fp_fleet_pick(kvs, 3, "/f", "lb4", &canary), 0);
	/* A node list without the canary config: the main one. */
	assert_int_equal(fp_fleet_pick(kvs, 1, "/f", "lb1", &canary), 0);
	assert_int_equal(fp_fleet_pick(&kvs[2], 1, "/f", "lb1", &canary), -1);
	assert_int_equal(fp_fleet_pick(kvs, 3, "/g", "lb1", &canary), -1);
	assert_true(fp_fleet_node_name_ok("lb-1.site_a"));
	assert_false(fp_fleet_node_name_ok("lb 1"));
	assert_false(fp_fleet_node_name_ok("a/b"));
	assert_false(fp_fleet_node_name_ok(""));
}

/* fleet push --canary N: the first N LB nodes by name; agents and bad statuses never. */
static void test_fleet_canaries(void **state)
{
#define ST(k, v)                                              \
	{                                                     \
		k, (unsigned char *)v, sizeof(v) - 1, 1, 1, 0 \
	}
	struct fp_etcd_kv status[] = {
		ST("/f/status/lb3", "{\"role\": \"lb\"}"),
		ST("/f/status/a-backend", "{\"role\": \"backend\"}"),
		ST("/f/status/lb1", "{\"role\": \"lb\", \"generation\": 2}"),
		ST("/f/status/b0", "not json"),
		ST("/f/status/lb2", "{\"role\": \"lb\"}"),
		ST("/f/status/bad name", "{\"role\": \"lb\"}"),
	};
#undef ST
	char why[128] = "", *list;

	(void)state;
	list = fp_fleet_canaries(status, 6, 2, why, sizeof(why));
	assert_non_null(list);
	assert_string_equal(list, "lb1\nlb2\n");
	free(list);
	list = fp_fleet_canaries(status, 6, 3, why, sizeof(why));
	assert_string_equal(list, "lb1\nlb2\nlb3\n");
	free(list);
	assert_null(fp_fleet_canaries(status, 6, 4, why, sizeof(why)));
	assert_string_equal(why, "only 3 LB nodes report a status");
	assert_null(fp_fleet_canaries(status, 2, 2, why, sizeof(why)));
	assert_string_equal(why, "only 1 LB node reports a status");
}

/* fleet push: compare-and-swap on the base revision; a canary leaves config alone. */
static void test_fleet_push(void **state)
{
	struct fp_etcd_kv *kvs;
	struct fp_etcd *e;
	int64_t r1, r2, r3;
	size_t n;

	(void)state;
	NEED_ETCD();
	e = client(url);
	assert_int_equal(fp_fleet_push(e, "/push", "one", 3, 0, NULL, &r1), 0);
	/* Two operators based on r1: the first wins, the second is stale. */
	assert_int_equal(fp_fleet_push(e, "/push", "two", 3, r1, NULL, &r2), 0);
	assert_int_equal(fp_fleet_push(e, "/push", "three", 5, r1, NULL, &r3), -ESTALE);
	assert_int_equal(fp_fleet_push(e, "/push", "three", 5, 0, NULL, &r3), -ESTALE);
	/* A canary based on r2: config untouched, canary and its nodes written. */
	assert_int_equal(fp_fleet_push(e, "/push", "can", 3, r2, "lb1\n", &r3), 0);
	assert_int_equal(fp_etcd_get(e, "/push/config", true, &kvs, &n, NULL), 0);
	assert_int_equal(n, 3);
	assert_string_equal((char *)kvs[0].value, "two");
	assert_int_equal(kvs[0].mod_revision, r2);
	assert_string_equal((char *)kvs[1].value, "can");
	assert_string_equal((char *)kvs[2].value, "lb1\n");
	fp_etcd_kvs_free(kvs, n);
	/* Everywhere: the canary goes. */
	assert_int_equal(fp_fleet_push(e, "/push", "four", 4, r2, NULL, &r3), 0);
	assert_int_equal(fp_etcd_get(e, "/push/config", true, &kvs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal((char *)kvs[0].value, "four");
	fp_etcd_kvs_free(kvs, n);
	fp_etcd_free(e);
}

/* Last: it turns authentication on for the rest of this etcd's life. */
static void test_auth(void **state)
{
	struct fp_etcd_target t;
	struct fp_etcd_auth a = { 0 };
	struct fp_etcd_kv *kvs;
	struct fp_etcd *e;
	char why[160];
	size_t n;

	(void)state;
	NEED_ETCD();
	if (access("/usr/bin/etcdctl", X_OK)) {
		printf("# etcdctl not installed (etcd-client): authentication not tested\n");
		skip();
	}
	assert_int_equal(run("ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:%d user add "
			     "root:s3cret >/dev/null && ETCDCTL_API=3 etcdctl "
			     "--endpoints=127.0.0.1:%d user grant-role root root >/dev/null && "
			     "ETCDCTL_API=3 etcdctl "
			     "--endpoints=127.0.0.1:%d auth enable >/dev/null",
			     client_port, client_port, client_port),
			 0);
	assert_int_equal(fp_etcd_parse_url(url, &t, why, sizeof(why)), 0);
	/* No user: refused by etcd. */
	e = fp_etcd_new(&t, NULL);
	assert_int_equal(fp_etcd_get(e, "/test/kv/a", false, &kvs, &n, NULL), -EACCES);
	printf("# %s\n", fp_etcd_error(e));
	fp_etcd_free(e);
	/* A wrong password. */
	snprintf(a.user, sizeof(a.user), "root");
	snprintf(a.password, sizeof(a.password), "wrong");
	e = fp_etcd_new(&t, &a);
	assert_int_equal(fp_etcd_get(e, "/test/kv/a", false, &kvs, &n, NULL), -EACCES);
	printf("# %s\n", fp_etcd_error(e));
	fp_etcd_free(e);
	/* The right one. */
	snprintf(a.password, sizeof(a.password), "s3cret");
	e = fp_etcd_new(&t, &a);
	assert_int_equal(fp_etcd_get(e, "/test/kv/a", false, &kvs, &n, NULL), 0);
	assert_int_equal(n, 1);
	fp_etcd_kvs_free(kvs, n);
	assert_int_equal(fp_etcd_put(e, "/test/kv/c", "z", 1, 0), 0);
	fp_etcd_free(e);
}

/* A node's apply hook for test_fleet_node: refuses what has a VIP named "refuse". */
struct node_seen {
	int applied;
	struct fp_config *cfg;
};

static int node_apply(void *arg, struct fp_config *cfg)
{
	struct node_seen *seen = arg;

	for (size_t v = 0; v < cfg->n_vips; v++) {
		if (!strcmp(cfg->vips[v].name, "refuse")) {
			fp_err("%s:%d: vips[%zu]: the node cannot take it\n", cfg->path,
			       cfg->vips[v].line, v);
			return -EINVAL;
		}
	}
	fp_config_free(seen->cfg);
	seen->cfg = cfg;
	seen->applied++;
	return 0;
}

static bool file_is(const char *path, const char *text)
{
	char buf[2048] = "";
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return !strcmp(buf, text);
}

/*
 * What every node does with the fleet's config (fp_fleet_start_config(), fp_fleet_take(),
 * the cache), for a backend's rules: start from etcd and cache it; a value handed over
 * applied (cache and report follow) or refused by the loader (key and line) or by the
 * node (its message captured), the cache and the report's applied revision untouched;
 * etcd unreachable: start from the cache, and without one not at all.
 */
static void test_fleet_node(void **state)
{
	static const char good[] = "lb_sources: [10.0.0.0/24]\n"
				   "vips:\n"
				   "  - {name: web, address: 10.0.0.1, port: 80, protocol: tcp,\n"
				   "     backends: [{id: 1, address: 10.0.1.1}]}\n";
	static const char refused[] =
		"lb_sources: [10.0.0.0/24]\n"
		"vips:\n"
		"  - {name: refuse, address: 10.0.0.1, port: 80, protocol: tcp,\n"
		"     backends: [{id: 1, address: 10.0.1.1}]}\n";
	static const char bad[] = "lb_sources: [10.0.0.0/24]\nvips: [\n";
	char name[200], run_dir[96], down_url[64], text[300];
	struct fp_fleet_report report = { 0 };
	struct node_seen seen = { 0 };
	struct fp_fleet_cache cache;
	struct fp_fleet_node node = {
		FP_CONFIG_FOR_BACKEND, NULL, node_apply, NULL, &seen, &cache
	};
	struct fp_etcd_target t, down;
	struct fp_config *cfg = NULL;
	struct fp_fleet_desired want;
	struct fp_etcd *e;
	int64_t rev;

	(void)state;
	NEED_ETCD();
	snprintf(run_dir, sizeof(run_dir), "%s/run", dir);
	assert_int_equal(mkdir(run_dir, 0700), 0);
	assert_int_equal(fp_fleet_cache_init(&cache, run_dir, "backend-n1"), 0);
	snprintf(name, sizeof(name), "%s/node", url);
	assert_int_equal(fp_etcd_parse_url(name, &t, text, sizeof(text)), 0);
	e = fp_etcd_new(&t, NULL);
	assert_non_null(e);

	/* Nothing pushed: no start. */
	assert_int_equal(fp_fleet_start_config(&t, NULL, "n1", &node, &cfg, &report), -ENOENT);
	assert_null(cfg);
	assert_int_equal(fp_fleet_push(e, "/test/node", good, sizeof(good) - 1, 0, NULL, &rev), 0);
	assert_int_equal(fp_fleet_start_config(&t, NULL, "n1", &node, &cfg, &report), 0);
	assert_non_null(cfg);
	assert_int_equal(cfg->n_vips, 1);
	fp_config_free(cfg);
	cfg = NULL;
	assert_int_equal(report.applied_revision, rev);
	assert_true(file_is(cache.yaml, good));
	snprintf(text, sizeof(text), "%lld config\n", (long long)rev);
	assert_true(file_is(cache.revision, text));

	/* Handed over: applied. */
	snprintf(name, sizeof(name), "%s/node/config", url);
	want = (struct fp_fleet_desired){ name, (const unsigned char *)good, sizeof(good) - 1,
					  rev + 5, false };
	assert_int_equal(fp_fleet_take(&want, &node, &report), 0);
	assert_int_equal(seen.applied, 1);
	assert_int_equal(report.applied_revision, rev + 5);
	assert_int_equal(report.refused_revision, 0);
	snprintf(text, sizeof(text), "%lld config\n", (long long)rev + 5);
	assert_true(file_is(cache.revision, text));

	/* The loader refuses: named by key and line; nothing else changes. */
	want = (struct fp_fleet_desired){ name, (const unsigned char *)bad, sizeof(bad) - 1,
					  rev + 6, false };
	assert_int_equal(fp_fleet_take(&want, &node, &report), -EINVAL);
	print_lines(report.error);
	assert_int_equal(seen.applied, 1);
	assert_int_equal(report.applied_revision, rev + 5);
	assert_int_equal(report.refused_revision, rev + 6);
	snprintf(text, sizeof(text), "%s:3: yaml: ", name);
	assert_non_null(strstr(report.error, text));
	assert_true(file_is(cache.yaml, good));

	/* The node refuses (a change it cannot take): its own message in the report. */
	want = (struct fp_fleet_desired){ name, (const unsigned char *)refused, sizeof(refused) - 1,
					  rev + 7, true };
	assert_int_equal(fp_fleet_take(&want, &node, &report), -EINVAL);
	print_lines(report.error);
	assert_int_equal(report.refused_revision, rev + 7);
	assert_int_equal(report.applied_revision, rev + 5);
	snprintf(text, sizeof(text), "%s:3: vips[0]: the node cannot take it", name);
	assert_non_null(strstr(report.error, text));
	assert_true(file_is(cache.yaml, good));
	assert_string_equal(seen.cfg->vips[0].name, "web");

	/* etcd unreachable: the cache, with its revision; without a cache, no start. */
	snprintf(down_url, sizeof(down_url), "etcd://127.0.0.1:%d/test/node", free_port());
	assert_int_equal(fp_etcd_parse_url(down_url, &down, text, sizeof(text)), 0);
	memset(&report, 0, sizeof(report));
	assert_int_equal(fp_fleet_start_config(&down, NULL, "n1", &node, &cfg, &report), 0);
	assert_non_null(cfg);
	assert_int_equal(report.applied_revision, rev + 5);
	fp_config_free(cfg);
	cfg = NULL;
	unlink(cache.yaml);
	assert_int_not_equal(fp_fleet_start_config(&down, NULL, "n1", &node, &cfg, &report), 0);
	assert_null(cfg);

	fp_config_free(seen.cfg);
	fp_etcd_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_url),
		cmocka_unit_test(test_get_put_prefix),
		cmocka_unit_test(test_txn_compare_and_swap),
		cmocka_unit_test(test_lease),
		cmocka_unit_test(test_watch),
		cmocka_unit_test(test_failover),
		cmocka_unit_test(test_config_from_etcd),
		cmocka_unit_test(test_fleet_pick),
		cmocka_unit_test(test_fleet_canaries),
		cmocka_unit_test(test_fleet_push),
		cmocka_unit_test(test_fleet_node),
		cmocka_unit_test(test_auth),
	};

	return cmocka_run_group_tests(tests, start_etcd, stop_etcd);
}
