/* SPDX-License-Identifier: MIT */
/*
 * What every flowpin subcommand parses or prints the same way: its option table and
 * usage errors, option errors that name the command, --interval, --source, and flow
 * endpoints.
 */
#ifndef FLOWPIN_CLI_H
#define FLOWPIN_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <flowpin/config.h>

/*
 * cli_getopt - getopt_long() whose errors read "flowpin CMD: unknown option '--x'" or
 * "flowpin CMD: --config needs a value" on stderr (getopt's own messages start with
 * argv[0], which is "up" or "check", not the command the user typed). @cmd is "lb up",
 * "check", ... Returns what getopt_long() returns, '?' for both kinds of error.
 */
int cli_getopt(const char *cmd, int argc, char **argv, const char *optstring,
	       const struct option *longopts, int *longindex);

/*
 * One command's options, declared once (every cmd_*.c but cmd_lb.c for now): getopt's
 * short options, the long options, the usage text, and one function that takes each
 * option into the command's own options struct. cli_parse() runs them; the command then
 * checks what is required and what belongs together.
 */
struct cli_command {
	const char *name;	      /* as typed, for messages: "check", "backend up" */
	const char *shortopts;	      /* as for cli_getopt(), with 'h' for --help */
	const struct option *options; /* ends with {} */
	void (*usage)(FILE *out);
	/* Takes option @opt (its val) with @arg: 0, or an exit status after a message. */
	int (*take)(void *opts, int opt, const char *arg);
};

#define CLI_RUN (-1) /* cli_parse(): every option taken, run the command */

/*
 * cli_parse - takes every option of @argv (argv[0] is the command's own word) into
 * @opts. Returns CLI_RUN with optind at the first argument that is no option, 0 after
 * -h/--help (usage on stdout), 2 after an unknown option or a missing value (usage on
 * stderr), or what @c->take returned.
 */
int cli_parse(const struct cli_command *c, int argc, char **argv, void *opts);

/*
 * A usage error: "flowpin CMD: MESSAGE" on stderr, then @usage(stderr) unless NULL.
 * Returns 2, the exit status of every usage error.
 */
int cli_usage_error(const char *cmd, void (*usage)(FILE *out), const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* --interval S: seconds, > 0 and at most a day. Returns 0, or -EINVAL after a message. */
int cli_parse_interval(const char *cmd, const char *arg, double *seconds);

/* Outer source addresses given with --source, at most one per family. */
struct cli_sources {
	struct fp_addr v4, v6;
	bool have_v4, have_v6;
};

/*
 * --source ADDR into @s. Returns 0, or -EINVAL after a message when @arg is no address
 * or its family was given already.
 */
int cli_parse_source(const char *cmd, const char *arg, struct cli_sources *s);

/*
 * For commands that repeat until interrupted (stats --interval): cli_block_stop_signals()
 * once before the loop, then cli_wait_stop() between samples. The signals stay blocked
 * and are taken by sigtimedwait(), so one that arrives while a sample is read or printed
 * ends the next wait at once: no handler, no flag to check before sleeping, no window in
 * which a signal is lost for a whole interval.
 */
void cli_block_stop_signals(void);

/* Waits @seconds. Returns SIGINT or SIGTERM when one arrived, else 0. */
int cli_wait_stop(double seconds);

/* "tcp", "udp", else "ip". */
const char *cli_proto_name(__u8 proto);

/* "ADDR:PORT", IPv6 as "[ADDR]:PORT". Returns @buf. */
const char *cli_endpoint_str(const struct fp_addr *a, __u16 port, char *buf, size_t len);

#endif
