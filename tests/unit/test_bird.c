// SPDX-License-Identifier: MIT
/*
 * lib/bird.c without BIRD: the include file's exact text (announced, draining,
 * withdrawn, both families, the alive interface, hostile comments), its atomic write,
 * and the control-socket reply parser fed in pieces (continuation lines, errors, a
 * line too long, bytes that are no reply). BIRD itself: tests/bpf/test_bird.c.
 */
#include <dirent.h>
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
#include <cmocka.h>
#include <flowpin/bird.h>

static struct fp_bird_route route(const char *addr, enum fp_announce_state s, const char *comment)
{
	struct fp_bird_route r = { .state = s, .comment = comment };

	assert_int_equal(fp_addr_parse(addr, &r.addr), 0);
	return r;
}

static const char header[] =
	"# The BGP announcements of this flowpin LB node: written by flowpin, replaced\n"
	"# at every change (do not edit). Announced: a route; draining: a route with the\n"
	"# GRACEFUL_SHUTDOWN community (RFC 8326); withdrawn: no route.\n"
	"# docs/operator-lb.md \"BGP stability shaping\".\n";

static void test_render(void **state)
{
	struct fp_bird_route routes[] = {
		route("198.51.100.10", FP_ANNOUNCE_ANNOUNCED, "web web-tls"),
		route("2001:db8::10", FP_ANNOUNCE_DRAINING, "web6"),
		route("198.51.100.11", FP_ANNOUNCE_DRAINING, NULL),
		route("198.51.100.12", FP_ANNOUNCE_WITHDRAWN, "gone"),
	};
	char expected[2048], *text;

	(void)state;
	assert_int_equal(fp_bird_include_render(routes, 4, NULL, &text), 0);
	snprintf(expected, sizeof(expected),
		 "%s"
		 "protocol static flowpin_v4 {\n"
		 "\tipv4;\n"
		 "\troute 198.51.100.10/32 blackhole; # web web-tls\n"
		 "\troute 198.51.100.11/32 blackhole { bgp_community.add((65535, 0)); }; "
		 "(draining)\n"
		 "}\n"
		 "protocol static flowpin_v6 {\n"
		 "\tipv6;\n"
		 "\troute 2001:db8::10/128 blackhole { bgp_community.add((65535, 0)); }; # web6 "
		 "(draining)\n"
		 "}\n",
		 header);
	assert_string_equal(text, expected);
	free(text);

	/* Via the alive interface; nothing announced leaves empty protocols. */
	assert_int_equal(fp_bird_include_render(routes, 1, "fp-alive", &text), 0);
	assert_non_null(strstr(text, "\troute 198.51.100.10/32 via \"fp-alive\"; # web web-tls\n"));
	free(text);
	assert_int_equal(fp_bird_include_render(NULL, 0, NULL, &text), 0);
	snprintf(expected, sizeof(expected),
		 "%sprotocol static flowpin_v4 {\n\tipv4;\n}\nprotocol static flowpin_v6 {\n"
		 "\tipv6;\n}\n",
		 header);
	assert_string_equal(text, expected);
	free(text);

	/* A name that would break out of the quotes, or too long, is refused. */
	text = (char *)1;
	assert_int_equal(fp_bird_include_render(routes, 1, "a\";}", &text), -EINVAL);
	assert_null(text);
	assert_int_equal(fp_bird_include_render(routes, 1, "sixteen-chars-xx", &text), -EINVAL);
	assert_false(fp_bird_ifname_ok(""));
	assert_true(fp_bird_ifname_ok("fp-alive.0_x"));
}

/* A comment cannot end the line and start BIRD configuration of its own. */
static void test_render_hostile_comment(void **state)
{
	struct fp_bird_route r =
		route("198.51.100.10", FP_ANNOUNCE_ANNOUNCED, "x\nprotocol bgp evil { }\r\t");
	char *text;

	(void)state;
	assert_int_equal(fp_bird_include_render(&r, 1, NULL, &text), 0);
	assert_non_null(strstr(text, "blackhole; # x?protocol bgp evil { }??\n"));
	assert_null(strstr(text, "\nprotocol bgp"));
	free(text);
}

/* From a config: one route per address, its VIPs named, the alive interface used. */
static void test_include_for_config(void **state)
{
	struct fp_vip_cfg vips[3] = { { .name = "web" }, { .name = "dns" }, { .name = "web-tls" } };
	struct fp_config cfg = { .vips = vips, .n_vips = 3 };
	struct fp_bgp_group groups[FP_MAX_VIPS];
	enum fp_announce_state states[2] = { FP_ANNOUNCE_DRAINING, FP_ANNOUNCE_ANNOUNCED };
	char *text;

	(void)state;
	assert_int_equal(fp_addr_parse("198.51.100.10", &vips[0].addr), 0);
	assert_int_equal(fp_addr_parse("2001:db8::53", &vips[1].addr), 0);
	vips[2].addr = vips[0].addr;
	cfg.bgp.enabled = true;
	cfg.bgp.vips = 0x7;
	strcpy(cfg.bgp.alive_interface, "fp-alive");
	assert_int_equal(fp_bgp_groups(&cfg, groups), 2);
	assert_int_equal(fp_bird_include_for(&cfg, groups, states, 2, &text), 0);
	assert_non_null(strstr(text,
			       "\troute 198.51.100.10/32 via \"fp-alive\" { "
			       "bgp_community.add((65535, 0)); }; # web web-tls (draining)\n"));
	assert_non_null(strstr(text, "\troute 2001:db8::53/128 via \"fp-alive\"; # dns\n"));
	free(text);
}

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_write_atomic(void **state)
{
	char dir[] = "/tmp/fp-test-bird-XXXXXX", path[64], msg[256] = "", buf[64] = "";
	struct stat st;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/flowpin.conf", dir);
	assert_int_equal(fp_bird_include_write(path, "one\n", msg, sizeof(msg)), 0);
	assert_int_equal(fp_bird_include_write(path, "two\n", msg, sizeof(msg)), 0);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "two\n");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(count_files(dir), 1); /* no temporary file left */

	/* A directory that does not exist: an error naming the file, nothing written. */
	snprintf(path, sizeof(path), "%s/none/flowpin.conf", dir);
	assert_int_equal(fp_bird_include_write(path, "x\n", msg, sizeof(msg)), -ENOENT);
	assert_non_null(strstr(msg, "/none/flowpin.conf.tmp."));
	snprintf(path, sizeof(path), "%s/flowpin.conf", dir);
	unlink(path);
	rmdir(dir);
}

/* Feeds @s in pieces of @step bytes; returns the last feed's result. */
static int feed(struct fp_bird_reply *r, const char *s, size_t step, size_t *rest)
{
	size_t len = strlen(s), off = 0, used;
	int ret = 0;

	fp_bird_reply_init(r);
	while (off < len) {
		size_t n = len - off < step ? len - off : step;

		ret = fp_bird_reply_feed(r, s + off, n, &used);
		off += used;
		if (ret)
			break;
	}
	*rest = len - off;
	return ret;
}

static void test_reply_parser(void **state)
{
	static const char show[] =
		"1007-Table master4:\n"
		" 198.51.100.11/32     blackhole [flowpin_v4 15:28:49.250] * (200)\n"
		"1008-\tType: static univ\n"
		"1012-\tBGP.community: (65535,0)\n"
		"0000 \n"
		"0001 next reply\n";
	struct fp_bird_reply r;
	size_t rest;

	(void)state;
	for (size_t step = 1; step <= sizeof(show); step++) {
		assert_int_equal(feed(&r, show, step, &rest), 1);
		assert_int_equal(rest, strlen("0001 next reply\n"));
		assert_int_equal(r.code, 0);
		assert_int_equal(r.error, 0);
		assert_string_equal(r.text, "Table master4:\n"
					    "198.51.100.11/32     blackhole [flowpin_v4 "
					    "15:28:49.250] * (200)\n"
					    "\tType: static univ\n"
					    "\tBGP.community: (65535,0)\n"
					    "\n");
		fp_bird_reply_free(&r);
	}

	assert_int_equal(feed(&r,
			      "0002-Reading configuration from /etc/bird/bird.conf\n"
			      "8002 /etc/bird/flowpin.conf:3:1 syntax error, unexpected ROUTE\n",
			      7, &rest),
			 1);
	assert_int_equal(r.code, 8002);
	assert_int_equal(r.error, 8002);
	assert_non_null(strstr(r.text, "/etc/bird/flowpin.conf:3:1 syntax error"));
	fp_bird_reply_free(&r);

	/* Not finished yet. */
	assert_int_equal(feed(&r, "0002-Reading configuration from x\n", 100, &rest), 0);
	assert_false(r.done);
	fp_bird_reply_free(&r);

	/* No reply line: a code of letters, a missing separator, a short line. */
	assert_int_equal(feed(&r, "HTTP/1.1 400 Bad Request\n", 100, &rest), -EPROTO);
	fp_bird_reply_free(&r);
	assert_int_equal(feed(&r, "00011BIRD\n", 100, &rest), -EPROTO);
	fp_bird_reply_free(&r);
	assert_int_equal(feed(&r, "01\n", 100, &rest), -EPROTO);
	fp_bird_reply_free(&r);

	/* A line longer than the buffer: kept cut, the reply still parses. */
	char *long_line = malloc(5000);

	assert_non_null(long_line);
	memset(long_line, 'x', 5000);
	memcpy(long_line, "1012-", 5);
	memcpy(long_line + 4990, "\n0000 end\n", 10);
	long_line[4999] = '\n';
	fp_bird_reply_init(&r);
	assert_int_equal(fp_bird_reply_feed(&r, long_line, 5000, &rest), 1);
	assert_string_equal(strchr(r.text, '\n'), "\nend\n");
	fp_bird_reply_free(&r);
	free(long_line);

	/* A reply past FP_BIRD_MAX_REPLY is refused, not buffered for ever. */
	char line[] =
		"1007-0123456789012345678901234567890123456789012345678901234567890123456789\n";
	size_t used;
	int ret = 0;

	fp_bird_reply_init(&r);
	for (size_t total = 0; total < 2 * FP_BIRD_MAX_REPLY && !ret; total += sizeof(line) - 1)
		ret = fp_bird_reply_feed(&r, line, sizeof(line) - 1, &used);
	assert_int_equal(ret, -E2BIG);
	fp_bird_reply_free(&r);
}

static void test_no_bird(void **state)
{
	char msg[256] = "";
	struct fp_bird *b = NULL;

	(void)state;
	assert_int_equal(fp_bird_connect("/nonexistent/bird.ctl", 200, &b, msg, sizeof(msg)),
			 -ENOENT);
	assert_null(b);
	assert_non_null(strstr(msg, "/nonexistent/bird.ctl"));
	assert_non_null(strstr(msg, "is BIRD running"));
	assert_int_equal(fp_bird_configure("/nonexistent/bird.ctl", 200, msg, sizeof(msg)),
			 -ENOENT);
	char longpath[200];

	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(fp_bird_connect(longpath, 200, &b, msg, sizeof(msg)), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_render_hostile_comment),
		cmocka_unit_test(test_include_for_config),
		cmocka_unit_test(test_write_atomic),
		cmocka_unit_test(test_reply_parser),
		cmocka_unit_test(test_no_bird),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
