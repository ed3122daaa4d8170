/* SPDX-License-Identifier: MIT */
/*
 * The tunnel health probe seen from the LB node (docs/wire-format.md, "Tunnel probe";
 * the bytes are struct fp_gue_probe in flowpin/wire.h): build the UDP payload of a
 * request, check the payload of what came back.
 *
 * Use: a UDP socket bound to the LB node's outer source address (an address in the
 * backends' lb_sources) and connected to backend:encap_port; send the request, wait
 * for the reply. A reply that passes fp_tunnel_probe_check_reply() was reflected by
 * the backend's agent (bpf/backend.bpf.c) through the real decapsulation path; with no
 * agent attached the kernel answers ICMP port unreachable, which a connected socket
 * reports as ECONNREFUSED. A fresh random nonce per probe (getrandom) keeps a late or
 * forged reply from counting for another probe.
 */
#ifndef FLOWPIN_TUNNELPROBE_H
#define FLOWPIN_TUNNELPROBE_H

#include <stddef.h>
#include <stdint.h>
#include <flowpin/wire.h>

/*
 * fp_tunnel_probe_build - writes a probe request carrying @nonce to @buf.
 * Returns the number of bytes written (FP_PROBE_SIZE: send exactly these), or 0 when
 * @buf is NULL or @len is smaller than FP_PROBE_SIZE (nothing written).
 */
size_t fp_tunnel_probe_build(void *buf, size_t len, uint64_t nonce);

/*
 * fp_tunnel_probe_check_reply - is @buf (@len bytes, a received UDP payload) the reply
 * to the request fp_tunnel_probe_build() made with @nonce? Exactly FP_PROBE_SIZE bytes,
 * GUE version 0 with the C bit, Hlen 3, the reply type, the P flag alone, the magic and
 * @nonce. Returns 0, or -EBADMSG for anything else (a request echoed back unchanged, a
 * reply to another probe, a truncated or padded datagram, NULL).
 */
int fp_tunnel_probe_check_reply(const void *buf, size_t len, uint64_t nonce);

#endif
