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

/* The usage of @c, or of @verb of @v when there is one. */
static void print_usage(const struct cli_command *c, const struct cli_verbs *v,
			const struct cli_verb *verb, FILE *out)
{
	if (verb)
		cli_verb_usage(v, verb, out);
	else
		c->usage(out);
}

/* "--name" of the option whose val is @opt, for messages. */
static const char *option_name(const struct cli_command *c, int opt)
{
	for (const struct option *o = c->options; o->name; o++)
		if (o->val == opt)
			return o->name;
	return "?";
}

static int parse(const struct cli_command *c, const struct cli_verbs *v,
		 const struct cli_verb *verb, int argc, char **argv, void *opts)
{
	int opt, rc;

	optind = 1;
	while ((opt = cli_getopt(c->name, argc, argv, c->shortopts, c->options, NULL)) != -1) {
		if (opt == 'h') {
			print_usage(c, v, verb, stdout);
			return 0;
		}
		if (opt == '?') {
			print_usage(c, v, verb, stderr);
			return 2;
		}
		if (verb && !strchr(verb->takes, opt)) {
			fprintf(stderr, "flowpin %s: --%s does not apply here\n", c->name,
				option_name(c, opt));
			print_usage(c, v, verb, stderr);
			return 2;
		}
		rc = c->take(opts, opt, optarg);
		if (rc)
			return rc;
	}
	return CLI_RUN;
}

int cli_parse(const struct cli_command *c, int argc, char **argv, void *opts)
{
	return parse(c, NULL, NULL, argc, argv, opts);
}

void cli_verb_usage(const struct cli_verbs *v, const struct cli_verb *verb, FILE *out)
{
	if (!verb->help) {
		v->command.usage(out);
		return;
	}
	fprintf(out, "usage: flowpin %s\n\n%s", verb->synopsis, verb->help);
	if (v->footer)
		fprintf(out, "\n%s", v->footer);
}

void cli_verb_synopses(const struct cli_verbs *v, FILE *out)
{
	for (size_t i = 0; i < v->n_verbs; i++)
		fprintf(out, "  flowpin %s\n", v->verbs[i].synopsis);
}

/* "up, down, stats": the verbs of @v, into @buf. */
static const char *verb_list(const struct cli_verbs *v, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < v->n_verbs && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", v->verbs[i].name);
	return buf;
}

int cli_parse_verb(const struct cli_verbs *v, int argc, char **argv, void *opts,
		   const struct cli_verb **verb, char *name, size_t name_len)
{
	struct cli_command c = v->command;
	char verbs[256];
	int rc;

	*verb = NULL;
	if (argc >= 2 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
		c.usage(stdout);
		return 0;
	}
	if (argc < 2 || argv[1][0] == '-')
		return cli_usage_error(c.name, c.usage, "a command is required (%s)\n",
				       verb_list(v, verbs, sizeof(verbs)));
	for (size_t i = 0; i < v->n_verbs && !*verb; i++)
		if (!strcmp(argv[1], v->verbs[i].name))
			*verb = &v->verbs[i];
	if (!*verb)
		return cli_usage_error(c.name, c.usage, "no command '%s' (%s)\n", argv[1],
				       verb_list(v, verbs, sizeof(verbs)));
	snprintf(name, name_len, "%s %s", c.name, (*verb)->name);
	c.name = name;
	rc = parse(&c, v, *verb, argc - 1, argv + 1, opts);
	if (rc != CLI_RUN)
		return rc;
	optind++; /* an index into @argv, not argv + 1 */
	if ((*verb)->operand) {
		if (optind >= argc) {
			fprintf(stderr, "flowpin %s: %s is required\n", name, (*verb)->operand);
			cli_verb_usage(v, *verb, stderr);
			return 2;
		}
		rc = c.take(opts, CLI_OPERAND, argv[optind++]);
		if (rc)
			return rc;
	}
	if (optind < argc)
		return cli_usage_error(name, NULL, "unexpected argument '%s'\n", argv[optind]);
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
