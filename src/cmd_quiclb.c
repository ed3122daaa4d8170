// SPDX-License-Identifier: MIT
/*
 * flowpin quic-lb: QUIC-LB connection IDs of a VIP's config (lib/quiclb.c), for
 * operators reading captures and for servers that want a CID from a shell.
 *
 *   encode  a CID for a server ID (--server-id, or a backend's by --backend), with a
 *           given or a random nonce: the CID in hex on stdout
 *   decode  a CID in hex: its config rotation bits, the server ID and the backend it
 *           names, or why it is unroutable (exit 1)
 *
 * The VIP is --vip NAME, or the config's only VIP with quic_lb.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <flowpin/config.h>
#include <flowpin/quiclb.h>
#include <flowpin/text.h>
#include "cli.h"
#include "commands.h"

struct quiclb_opts {
	const char *command; /* "quic-lb encode", for messages */
	const char *config;
	const char *vip;
	const char *server_id; /* hex */
	const char *backend;   /* an id */
	const char *nonce;     /* hex */
	const char *cid;       /* decode's operand, hex */
};

static const struct cli_verb quiclb_verbs[2];

static void usage(FILE *out)
{
	for (size_t i = 0; i < sizeof(quiclb_verbs) / sizeof(quiclb_verbs[0]); i++)
		fprintf(out, "%s flowpin %s\n", i ? "      " : "usage:", quiclb_verbs[i].synopsis);
	fprintf(out,
		"\n"
		"QUIC-LB connection IDs (draft-ietf-quic-load-balancers-21) of a VIP's quic_lb\n"
		"config (docs/quic-lb.md).\n"
		"\n"
		"encode  prints a CID in hex naming the server ID given by --server-id, or the\n"
		"        one of the backend given by --backend; the nonce is --nonce, or random.\n"
		"decode  prints what the CID (hex) says: its config rotation bits, the server\n"
		"        ID, and the VIP's backend with that server ID. Exits 1 when the CID is\n"
		"        unroutable (another config, 0b111, too short) or names no backend.\n"
		"\n"
		"  -c, --config FILE      the flowpin config\n"
		"  -V, --vip NAME         the VIP (default: the config's only VIP with quic_lb)\n"
		"  -s, --server-id HEX    encode: server_id_len octets in hex\n"
		"  -b, --backend ID       encode: that backend's server_id\n"
		"  -n, --nonce HEX        encode: nonce_len octets in hex (default random)\n"
		"  -h, --help             this text\n"
		"\n"
		"Exit status: 0 done, 1 error or unroutable CID, 2 usage.\n");
}

static int quiclb_option(void *opts, int opt, const char *arg)
{
	struct quiclb_opts *o = opts;

	switch (opt) {
	case 'c':
		o->config = arg;
		break;
	case 'V':
		o->vip = arg;
		break;
	case 's':
		o->server_id = arg;
		break;
	case 'b':
		o->backend = arg;
		break;
	case 'n':
		o->nonce = arg;
		break;
	case CLI_OPERAND:
		o->cid = arg;
		break;
	}
	return 0;
}

/* Hex from the command line, "0x" allowed in front: exactly @len octets. */
static int parse_hex(const char *s, __u8 *out, size_t len)
{
	if (!strncmp(s, "0x", 2) || !strncmp(s, "0X", 2))
		s += 2;
	return fp_hex_parse(s, out, len);
}

/* The VIP: --vip, or the only one with quic_lb. NULL after a message. */
static const struct fp_vip_cfg *pick_vip(const struct quiclb_opts *o, const struct fp_config *cfg)
{
	const struct fp_vip_cfg *found = NULL;
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_vips; i++) {
		const struct fp_vip_cfg *v = &cfg->vips[i];

		if (o->vip && !strcmp(v->name, o->vip)) {
			if (v->has_quic_lb)
				return v;
			fprintf(stderr, "flowpin %s: VIP '%s' has no quic_lb\n", o->command,
				o->vip);
			return NULL;
		}
		if (!o->vip && v->has_quic_lb) {
			found = found ? found : v;
			n++;
		}
	}
	if (o->vip)
		fprintf(stderr, "flowpin %s: no VIP named '%s'\n", o->command, o->vip);
	else if (!n)
		fprintf(stderr, "flowpin %s: %s has no VIP with quic_lb\n", o->command, cfg->path);
	else if (n > 1)
		fprintf(stderr, "flowpin %s: %zu VIPs have quic_lb: name one with --vip\n",
			o->command, n);
	return n == 1 ? found : NULL;
}

static const struct fp_backend_cfg *backend_with_server_id(const struct fp_vip_cfg *v,
							   const __u8 *sid)
{
	for (size_t i = 0; i < v->n_backends; i++)
		if (!memcmp(v->backends[i].server_id, sid, v->quic_lb.server_id_len))
			return &v->backends[i];
	return NULL;
}

static const char *encoding_name(const struct fp_quiclb_cfg *q)
{
	if (!q->encrypted)
		return "plaintext";
	return q->server_id_len + q->nonce_len == FP_QUICLB_BLOCK ? "single-pass AES"
								  : "four-pass AES";
}

static int quiclb_encode(const struct quiclb_opts *o, const struct fp_vip_cfg *v)
{
	const struct fp_quiclb_cfg *q = &v->quic_lb;
	__u8 sid[FP_QUICLB_MAX_SID], nonce[FP_QUICLB_MAX_NONCE], cid[FP_QUICLB_MAX_CID];
	char hex[2 * FP_QUICLB_MAX_CID + 1];
	size_t len;
	int ret;

	if (o->server_id) {
		if (parse_hex(o->server_id, sid, q->server_id_len)) {
			fprintf(stderr,
				"flowpin %s: --server-id '%s': VIP '%s' needs %u octets in hex "
				"(quic_lb.server_id_len)\n",
				o->command, o->server_id, v->name, q->server_id_len);
			return 2;
		}
	} else {
		const struct fp_backend_cfg *b = NULL;
		char *end;
		unsigned long id = strtoul(o->backend, &end, 10);

		for (size_t i = 0; *o->backend && !*end && i < v->n_backends && !b; i++)
			if (v->backends[i].id == id)
				b = &v->backends[i];
		if (!b) {
			fprintf(stderr, "flowpin %s: VIP '%s' has no backend with id '%s'\n",
				o->command, v->name, o->backend);
			return 1;
		}
		memcpy(sid, b->server_id, q->server_id_len);
	}
	if (o->nonce && parse_hex(o->nonce, nonce, q->nonce_len)) {
		fprintf(stderr,
			"flowpin %s: --nonce '%s': VIP '%s' needs %u octets in hex "
			"(quic_lb.nonce_len)\n",
			o->command, o->nonce, v->name, q->nonce_len);
		return 2;
	}
	ret = fp_quiclb_encode(q, sid, o->nonce ? nonce : NULL, cid, &len);
	if (ret) {
		fprintf(stderr, "flowpin %s: %s\n", o->command, strerror(-ret));
		return 1;
	}
	fp_hex(cid, len, hex);
	printf("%s\n", hex);
	return 0;
}

static int quiclb_decode(const struct quiclb_opts *o, const struct fp_vip_cfg *v)
{
	const struct fp_quiclb_cfg *q = &v->quic_lb;
	const char *s = o->cid;
	__u8 cid[FP_QUICLB_MAX_CID], sid[FP_QUICLB_MAX_SID];
	char hex[2 * FP_QUICLB_MAX_CID + 1], addr[INET6_ADDRSTRLEN];
	const struct fp_backend_cfg *b;
	size_t len;
	int ret;

	if (!strncmp(s, "0x", 2) || !strncmp(s, "0X", 2))
		s += 2;
	len = strlen(s) / 2;
	if (!len || strlen(s) % 2 || len > FP_QUICLB_MAX_CID || fp_hex_parse(s, cid, len)) {
		fprintf(stderr, "flowpin %s: CID '%s': 1..%d octets in hex\n", o->command, o->cid,
			FP_QUICLB_MAX_CID);
		return 2;
	}
	fp_hex(cid, len, hex);
	printf("cid        %s (%zu octets)\n", hex, len);
	printf("vip        %s (%s, config_id %u, server_id_len %u, nonce_len %u)\n", v->name,
	       encoding_name(q), q->config_id, q->server_id_len, q->nonce_len);
	printf("config_id  %u%s\n", FP_QUICLB_CONFIG_ID(cid[0]),
	       FP_QUICLB_CONFIG_ID(cid[0]) == FP_QUICLB_UNROUTABLE ? " (0b111: unroutable)" : "");
	ret = fp_quiclb_decode(q, cid, len, sid);
	if (ret == -ENOENT) {
		printf("unroutable the config rotation bits are not the VIP's config_id %u\n",
		       q->config_id);
		return 1;
	}
	if (ret == -EINVAL) {
		printf("unroutable %zu octets: the config's CIDs have %zu\n", len,
		       fp_quiclb_cid_len(q));
		return 1;
	}
	if (ret) {
		fprintf(stderr, "flowpin %s: %s\n", o->command, strerror(-ret));
		return 1;
	}
	fp_hex(sid, q->server_id_len, hex);
	printf("server_id  %s\n", hex);
	b = backend_with_server_id(v, sid);
	if (!b) {
		printf("backend    none: no backend of '%s' has this server_id\n", v->name);
		return 1;
	}
	printf("backend    %u (%s, %s)\n", b->id, fp_addr_str(&b->addr, addr, sizeof(addr)),
	       fp_backend_state_name(b->state));
	return 0;
}

static int run_verb(const struct quiclb_opts *o,
		    int (*verb)(const struct quiclb_opts *, const struct fp_vip_cfg *))
{
	struct fp_config *cfg = NULL;
	const struct fp_vip_cfg *v;
	int rc = 1;

	/* The servers' file: every rule of a backend's config, hash_key optional. */
	if (fp_config_load_for(o->config, FP_CONFIG_FOR_BACKEND, &cfg, stderr))
		return 1;
	v = pick_vip(o, cfg);
	if (v)
		rc = verb(o, v);
	fp_config_free(cfg);
	return rc;
}

static int quiclb_encode_run(const void *opts)
{
	return run_verb(opts, quiclb_encode);
}

static int quiclb_decode_run(const void *opts)
{
	return run_verb(opts, quiclb_decode);
}

static const struct option quiclb_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "vip", required_argument, NULL, 'V' },
	{ "server-id", required_argument, NULL, 's' },
	{ "backend", required_argument, NULL, 'b' },
	{ "nonce", required_argument, NULL, 'n' },
	{ "help", no_argument, NULL, 'h' },
	{},
};

/* Name, synopsis, the options it takes (their vals above), operand, help, run. */
static const struct cli_verb quiclb_verbs[2] = {
	{ "encode",
	  "quic-lb encode --config FILE [--vip NAME] --server-id HEX|--backend ID [--nonce HEX]",
	  "cVsbn", NULL, NULL, quiclb_encode_run },
	{ "decode", "quic-lb decode --config FILE [--vip NAME] CID", "cV", "CID (hex)", NULL,
	  quiclb_decode_run },
};

static const struct cli_verbs quiclb_command = {
	{ "quic-lb", "c:V:s:b:n:h", quiclb_options, usage, quiclb_option },
	quiclb_verbs,
	sizeof(quiclb_verbs) / sizeof(quiclb_verbs[0]),
	NULL,
};

int cmd_quiclb(int argc, char **argv)
{
	struct quiclb_opts o = {};
	const struct cli_verb *verb;
	char cmd[32];
	int rc;

	o.command = cmd;
	rc = cli_parse_verb(&quiclb_command, argc, argv, &o, &verb, cmd, sizeof(cmd));
	if (rc != CLI_RUN)
		return rc;
	if (!o.config)
		return cli_usage_error(cmd, NULL, "--config FILE is required\n");
	if (verb->run == quiclb_encode_run && !o.server_id == !o.backend)
		return cli_usage_error(cmd, NULL, "one of --server-id HEX and --backend ID\n");
	return verb->run(&o);
}
