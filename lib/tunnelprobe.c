// SPDX-License-Identifier: MIT
/*
 * Tunnel health probe, the LB node's side (contract in flowpin/tunnelprobe.h, bytes in
 * flowpin/wire.h and docs/wire-format.md). Pure byte work: no socket, no clock, so the
 * health module owns the I/O and the unit tests need nothing.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <flowpin/tunnelprobe.h>

static void probe_fill(struct fp_gue_probe *p, __u8 ctype, uint64_t nonce)
{
	p->gue.hlen_ver = FP_PROBE_HLEN_VER;
	p->gue.proto = ctype;
	p->gue.flags = htobe16(FP_GUE_FLAG_PRIV);
	p->magic = htobe32(FP_PROBE_MAGIC);
	p->nonce = htobe64(nonce);
}

size_t fp_tunnel_probe_build(void *buf, size_t len, uint64_t nonce)
{
	struct fp_gue_probe p;

	if (!buf || len < sizeof(p))
		return 0;
	probe_fill(&p, FP_GUE_CTYPE_PROBE_REQUEST, nonce);
	memcpy(buf, &p, sizeof(p)); /* @buf need not be aligned */
	return sizeof(p);
}

int fp_tunnel_probe_check_reply(const void *buf, size_t len, uint64_t nonce)
{
	struct fp_gue_probe want;

	/* One comparison of the whole message: every byte is fixed by the request. */
	if (!buf || len != sizeof(want))
		return -EBADMSG;
	probe_fill(&want, FP_GUE_CTYPE_PROBE_REPLY, nonce);
	return memcmp(buf, &want, sizeof(want)) ? -EBADMSG : 0;
}
