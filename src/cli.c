// SPDX-License-Identifier: MIT
/* Shared by the subcommands: see cli.h. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "cli.h"

int cli_getopt(const char *cmd, int argc, char **argv, const char *optstring,
	       const struct option *longopts, int *longindex)
{
	char spec[64];
	const char *rest = optstring;
	const char *typed;
	int opt;

	/* A ':' right after the optional '+' makes getopt tell a missing value apart. */
	if (*rest == '+')
		rest++;
	if (snprintf(spec, sizeof(spec), "%s:%s", rest == optstring ? "" : "+", rest) >=
	    (int)sizeof(spec))
		return -1;
	opterr = 0;
	opt = getopt_long(argc, argv, spec, longopts, longindex);
	if (opt != '?' && opt != ':')
		return opt;
	typed = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
	if (opt == ':')
		fprintf(stderr, "flowpin %s: %s needs a value\n", cmd, typed);
	else if (optopt && optopt != '?')
		fprintf(stderr, "flowpin %s: unknown option '-%c'\n", cmd, optopt);
	else
		fprintf(stderr, "flowpin %s: unknown option '%s'\n", cmd, typed);
	return '?';
}

int cli_parse(const struct cli_command *c, int argc, char **argv, void *opts)
{
	int opt, rc;

	optind = 1;
	while ((opt = cli_getopt(c->name, argc, argv, c->shortopts, c->options, NULL)) != -1) {
		if (opt == 'h') {
			c->usage(stdout);
			return 0;
		}
		if (opt == '?') {
			c->usage(stderr);
			return 2;
		}
		rc = c->take(opts, opt, optarg);
		if (rc)
			return rc;
	}
	return CLI_RUN;
}

int cli_usage_error(const char *cmd, void (*usage)(FILE *out), const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "flowpin %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (usage)
		usage(stderr);
	return 2;
}

int cli_parse_interval(const char *cmd, const char *arg, double *seconds)
{
	char *end;
	double s = strtod(arg, &end);

	if (end == arg || *end || !(s > 0) || s > 86400) {
		fprintf(stderr,
			"flowpin %s: --interval '%s': seconds, more than 0, at most 86400\n", cmd,
			arg);
		return -EINVAL;
	}
	*seconds = s;
	return 0;
}

int cli_parse_source(const char *cmd, const char *arg, struct cli_sources *s)
{
	struct fp_addr a;
	bool v4;

	if (fp_addr_parse(arg, &a)) {
		fprintf(stderr, "flowpin %s: --source '%s': not an IPv4 or IPv6 address\n", cmd,
			arg);
		return -EINVAL;
	}
	v4 = fp_addr_v4(&a);
	if (v4 ? s->have_v4 : s->have_v6) {
		fprintf(stderr, "flowpin %s: --source '%s': one IPv%d source only\n", cmd, arg,
			v4 ? 4 : 6);
		return -EINVAL;
	}
	if (v4) {
		s->v4 = a;
		s->have_v4 = true;
	} else {
		s->v6 = a;
		s->have_v6 = true;
	}
	return 0;
}

static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
}

void cli_block_stop_signals(void)
{
	sigset_t set;

	stop_signals(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

int cli_wait_stop(double seconds)
{
	struct timespec ts = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };
	sigset_t set;
	int sig;

	stop_signals(&set);
	do
		sig = sigtimedwait(&set, NULL, &ts); /* EINTR: another signal's handler ran */
	while (sig < 0 && errno == EINTR);
	return sig < 0 ? 0 : sig;
}

const char *cli_proto_name(__u8 proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "ip";
}

const char *cli_endpoint_str(const struct fp_addr *a, __u16 port, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	fp_addr_str(a, addr, sizeof(addr));
	snprintf(buf, len, fp_addr_v4(a) ? "%s:%u" : "[%s]:%u", addr, port);
	return buf;
}
