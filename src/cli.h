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
 * One command's options, declared once (every cmd_*.c): getopt's short options, the long
 * options, the usage text, and one function that takes each option into the command's
 * own options struct. cli_parse() runs them; the command then checks what is required
 * and what belongs together. A command of verbs (lb, backend) declares one such table
 * for all its verbs, and each verb the options it takes (struct cli_verb).
 */
struct cli_command {
	const char *name;	      /* as typed, for messages: "check", "backend up" */
	const char *shortopts;	      /* as for cli_getopt(), with 'h' for --help */
	const struct option *options; /* ends with {} */
	void (*usage)(FILE *out);
	/* Takes option @opt (its val) with @arg: 0, or an exit status after a message. */
	int (*take)(void *opts, int opt, const char *arg);
};

#define CLI_RUN	    (-1) /* cli_parse(): every option taken, run the command */
#define CLI_OPERAND 1	 /* the take function's opt for a verb's operand */

/*
 * cli_parse - takes every option of @argv (argv[0] is the command's own word) into
 * @opts. Returns CLI_RUN with optind at the first argument that is no option, 0 after
 * -h/--help (usage on stdout), 2 after an unknown option or a missing value (usage on
 * stderr), or what @c->take returned.
 */
int cli_parse(const struct cli_command *c, int argc, char **argv, void *opts);

/*
 * One verb of a command of verbs ("lb up", "backend stats").
 */
struct cli_verb {
	const char *name;     /* "up" */
	const char *synopsis; /* its usage line after "flowpin ": "lb up --config FILE ..." */
	/* The options it takes, by their val in the command's table ("cdp"; -h/--help
	 * always); another verb's option is "--X does not apply here". */
	const char *takes;
	/* Its one required operand, as the message names it ("BACKEND (an id or an
	 * address)"), taken as option CLI_OPERAND; NULL: none. */
	const char *operand;
	const char *help; /* what it does, for `CMD VERB --help`; NULL: the command's usage */
	int (*run)(const void *opts);
};

struct cli_verbs {
	struct cli_command command; /* "lb": every verb's options, the command's usage */
	const struct cli_verb *verbs;
	size_t n_verbs;
	const char *footer; /* after a verb's help: defaults, exit status */
};

/*
 * cli_parse_verb - argv[1] names the verb, its options follow (parsed as cli_parse()
 * does, with the verb's own help and "--X does not apply here"), then its operand; any
 * other argument is a usage error. "CMD VERB" is written into @name (for messages)
 * before anything is taken. Returns CLI_RUN with *@verb set; 0 after CMD --help, -h or
 * help, or after VERB --help; 2 after a missing or unknown verb or a usage error
 * (message, and usage, on stderr); or what the take function returned.
 */
int cli_parse_verb(const struct cli_verbs *v, int argc, char **argv, void *opts,
		   const struct cli_verb **verb, char *name, size_t name_len);

/* A verb's help: "usage: flowpin SYNOPSIS", its help (or the command's usage), the footer. */
void cli_verb_usage(const struct cli_verbs *v, const struct cli_verb *verb, FILE *out);

/* Every verb's synopsis, one "  flowpin SYNOPSIS" line each. */
void cli_verb_synopses(const struct cli_verbs *v, FILE *out);

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
