// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the config loader, through the entry `flowpin check` uses
 * (fp_config_load_for(FP_CONFIG_FOR_FLEET), lib/config.c: the rules of LB nodes and
 * backends together), on arbitrary bytes as the config file.
 *
 * Each input is written to a memfd and loaded by its /proc/self/fd path, so the
 * loader runs exactly as for a file on disk. Besides crashes and sanitizer reports,
 * the run fails (abort with "FUZZ ORACLE: ...") when:
 *  - a refused file produces no message, or a message that is not
 *    "FILE:LINE: FIELD: message" (docs/config.md: every problem names its place);
 *  - an accepted file produces anything but such warnings, or a config that breaks a
 *    limit the data plane relies on (VIP count, backend ids, weights, table size and
 *    the bucket array, ports, timeouts, unique (address, port, protocol), lb_sources
 *    present and within the backend's map, prefixes without host bits).
 * Seeds: tests/fuzz/corpus/config/ (examples/flowpin.yaml and configs from the tests).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <flowpin/config.h>
#include <flowpin/maglev.h>
#include "fuzz/oracle.h"

static int memfd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (getenv("FP_FUZZ_WRITE_SEEDS"))
		exit(0); /* seeds are the committed corpus (tests/fuzz/corpus/config) */
	memfd = memfd_create("fuzz.yaml", MFD_CLOEXEC);
	if (memfd < 0) {
		perror("memfd_create");
		exit(1);
	}
	/* Not readable by others: the loader warns about a file others can read. */
	if (fchmod(memfd, 0600)) {
		perror("fchmod");
		exit(1);
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	return 0;
}

/*
 * Every line of @msgs is "PATH:LINE: ..." with LINE a positive decimal number; with
 * @warnings_only, each a warning ("PATH:LINE: FIELD: warning: ...").
 */
static void check_messages(const char *msgs, size_t len, int warnings_only)
{
	size_t plen = strlen(path);
	const char *line = msgs, *end = msgs + len;

	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *p = line + plen;
		size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
		int digits = 0;

		if (n <= plen || memcmp(line, path, plen) || *p != ':')
			FUZZ_FAIL("message without the file name: '%.*s'", (int)n, line);
		for (p++; p < line + n && *p >= '0' && *p <= '9'; p++)
			digits++;
		if (!digits || p >= line + n || *p != ':' || line[plen + 1] == '0')
			FUZZ_FAIL("message without a line number: '%.*s'", (int)n, line);
		if (warnings_only && !memmem(p, (size_t)(line + n - p), ": warning: ", 11))
			FUZZ_FAIL("accepted, yet printed: '%.*s'", (int)n, line);
		line += n + 1;
	}
}

static void check_config(const struct fp_config *cfg)
{
	size_t max_backends = 0;

	if (cfg->n_vips < 1 || cfg->n_vips > FP_MAX_VIPS)
		FUZZ_FAIL("accepted %zu VIPs", cfg->n_vips);
	if (cfg->table_size < 3 || cfg->table_size > FP_MAX_TABLE_SIZE ||
	    !fp_is_prime(cfg->table_size) ||
	    cfg->table_size > fp_config_max_table_size(fp_config_vip_slots(cfg->n_vips)))
		FUZZ_FAIL("accepted table_size %u", cfg->table_size);
	if (!cfg->n_lb_sources || cfg->n_lb_sources > FP_MAX_LB_SOURCES)
		FUZZ_FAIL("accepted %zu lb_sources", cfg->n_lb_sources);
	if (!cfg->encap_port)
		FUZZ_FAIL("accepted encap_port 0");
	if (!cfg->timeouts.tcp_established || cfg->timeouts.tcp_established > FP_MAX_TIMEOUT ||
	    !cfg->timeouts.tcp_transitory || cfg->timeouts.tcp_transitory > FP_MAX_TIMEOUT ||
	    !cfg->timeouts.udp || cfg->timeouts.udp > FP_MAX_TIMEOUT)
		FUZZ_FAIL("accepted a timeout out of 1..%d", FP_MAX_TIMEOUT);
	for (size_t i = 0; i < cfg->n_lb_sources; i++) {
		const struct fp_prefix *p = &cfg->lb_sources[i];

		if (p->len > 128 || (fp_addr_v4(&p->addr) && p->len < 96))
			FUZZ_FAIL("lb_sources[%zu]: prefix length %u", i, p->len);
		for (unsigned int bit = p->len; bit < 128; bit++)
			if (p->addr.a[bit / 8] & (0x80 >> (bit % 8)))
				FUZZ_FAIL("lb_sources[%zu]: host bits set", i);
	}
	for (size_t i = 0; i < cfg->n_vips; i++) {
		const struct fp_vip_cfg *v = &cfg->vips[i];
		size_t nlen = strnlen(v->name, sizeof(v->name));

		if (!nlen || nlen >= sizeof(v->name))
			FUZZ_FAIL("vips[%zu]: name of %zu characters", i, nlen);
		if (v->proto != IPPROTO_TCP && v->proto != IPPROTO_UDP)
			FUZZ_FAIL("vips[%zu]: protocol %u", i, v->proto);
		if ((unsigned int)v->pinning > FP_PIN_FULL)
			FUZZ_FAIL("vips[%zu]: pinning %d", i, v->pinning);
		if (v->hash_addresses_only && v->port)
			FUZZ_FAIL("vips[%zu]: hash addresses with port %u", i, v->port);
		if (!v->n_backends || !v->backends)
			FUZZ_FAIL("vips[%zu]: no backends", i);
		if (v->line < 1)
			FUZZ_FAIL("vips[%zu]: line %d", i, v->line);
		if (v->n_backends > max_backends)
			max_backends = v->n_backends;
		for (size_t j = 0; j < i; j++) {
			const struct fp_vip_cfg *o = &cfg->vips[j];

			if (o->proto == v->proto && o->port == v->port &&
			    !memcmp(&o->addr, &v->addr, sizeof(v->addr)))
				FUZZ_FAIL("vips[%zu] and vips[%zu]: same address, port, protocol",
					  j, i);
			if (!strcmp(o->name, v->name))
				FUZZ_FAIL("vips[%zu] and vips[%zu]: same name", j, i);
		}
		for (size_t k = 0; k < v->n_backends; k++) {
			const struct fp_backend_cfg *b = &v->backends[k];

			if (b->id < 1 || b->id > FP_MAX_BACKEND_ID)
				FUZZ_FAIL("vips[%zu].backends[%zu]: id %u", i, k, b->id);
			if (b->weight < 1 || b->weight > 65535)
				FUZZ_FAIL("vips[%zu].backends[%zu]: weight %u", i, k, b->weight);
			if ((unsigned int)b->state > FP_BACKEND_DOWN)
				FUZZ_FAIL("vips[%zu].backends[%zu]: state %d", i, k, b->state);
			if (b->line < 1)
				FUZZ_FAIL("vips[%zu].backends[%zu]: line %d", i, k, b->line);
			for (size_t l = 0; l < k; l++)
				if (v->backends[l].id == b->id)
					FUZZ_FAIL("vips[%zu]: backend id %u twice", i, b->id);
		}
	}
	if (100ULL * max_backends > cfg->table_size)
		FUZZ_FAIL("table_size %u < 100 x %zu backends", cfg->table_size, max_backends);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fp_config *cfg = NULL;
	char *msgs = NULL;
	size_t msgs_len = 0;
	FILE *err;
	int ret;

	if (ftruncate(memfd, 0) || pwrite(memfd, data, size, 0) != (ssize_t)size)
		FUZZ_FAIL("cannot write the input to the memfd: %s", strerror(errno));
	err = open_memstream(&msgs, &msgs_len);
	if (!err)
		FUZZ_FAIL("open_memstream: %s", strerror(errno));
	ret = fp_config_load_for(path, FP_CONFIG_FOR_FLEET, &cfg, err);
	fclose(err);

	if (ret == 0) {
		if (!cfg)
			FUZZ_FAIL("accepted without a config");
		check_messages(msgs, msgs_len, 1);
		check_config(cfg);
		fp_config_free(cfg);
	} else {
		if (cfg)
			FUZZ_FAIL("refused (%d) but returned a config", ret);
		if (ret != -EINVAL && ret != -ENOMEM)
			FUZZ_FAIL("refused with %d (%s), not -EINVAL", ret, strerror(-ret));
		if (ret == -EINVAL && !msgs_len)
			FUZZ_FAIL("refused (%d) without a message", ret);
		check_messages(msgs, msgs_len, 0);
	}
	free(msgs);
	return 0;
}
