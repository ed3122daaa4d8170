// SPDX-License-Identifier: MIT
/*
 * fpquic: the lab's QUIC server and migrating QUIC client, on Debian's libngtcp2 (0.12)
 * with GnuTLS. A download over one bidirectional stream, every byte checked, like
 * lab/fpclient.c does over HTTP/1.1.
 *
 *   fpquic server --name bN --vip ADDR:PORT[/quic-lb=CONF] ... [--idle-timeout S]
 *       CONF = CONFIG_ID,SERVER_ID_HEX,NONCE_LEN[,KEY_HEX] (include/flowpin/quiclb.h)
 *   fpquic client --target NAME=ADDR:PORT ... --source ADDR ... --flows N --size BYTES
 *       --seed N [--rate B/S] [--timeout S] [--stall S] [--ramp S]
 *       [--idle-at BYTES --idle-for S] [--rebind-at S] [--migrate-at S] [--out FILE]
 *       [--every-move] [--ask-seed N]   (asks for the content of another seed than it checks: a test
 *                         that the check sees a wrong byte)
 *
 * Server: one UDP socket per VIP, bound to the VIP (on lo: replies leave from it and go
 * straight to the client, DSR). Every source connection ID it issues (the one of its
 * first Initial and every NEW_CONNECTION_ID) is made by flowpin's QUIC-LB encoder,
 * fp_quiclb_encode(), with this backend's server ID for that VIP and a random nonce;
 * on a VIP without quic-lb they are 9 random bytes. Packets whose destination
 * connection ID belongs to no connection of its own are dropped (a server that never
 * saw a connection cannot help it), except a client's first Initial.
 *
 * Protocol, on a client-opened bidirectional stream: the request is one line
 * "GET OFFSET LENGTH SEED RATE\n"; the answer is "NAME\n" (the backend's --name) then
 * bytes [OFFSET, OFFSET + LENGTH) of the content (lab/labutil.h), sent at RATE bytes/s
 * (0: as fast as flow control allows), then FIN.
 *
 * Client: per target, --flows connections, launched evenly over --ramp seconds, each
 * from its own UDP socket on one of the --source addresses of the target's family
 * (round-robin, kernel-chosen port). With --idle-at the download is two requests on
 * two streams of the same connection with --idle-for seconds of silence between them.
 * Moving connections (at once; of each target's connections the even-numbered ones
 * rebind, the odd-numbered ones migrate, each connection moves once: --every-move
 * moves every one at both, which ngtcp2 0.12's server survives only with the moves
 * well apart, see move_all()):
 *   rebind  (SIGUSR1, or --rebind-at S): NAT rebinding: the same source address, a new
 *           port, the old socket closed; QUIC is not told (ngtcp2_conn_set_local_addr:
 *           the server sees a new address and validates it).
 *   migrate (SIGUSR2, or --migrate-at S): active migration to the next source address
 *           of the family (ngtcp2_conn_initiate_immediate_migration: a new destination
 *           connection ID, PATH_CHALLENGE on the new path); the old address is gone
 *           (its socket closed), as when a phone leaves a Wi-Fi network.
 *
 * Outcomes, as fpclient's: completed, reset (the connection closed, or a fatal QUIC
 * error), stalled (no progress for --stall s while bytes were due), timeout (the
 * handshake did not finish within --stall s, or the flow's deadline passed), corrupted
 * (a byte or the answer's header line was wrong). Output, one line per flow:
 *   flow TARGET SRC SPORT BACKEND OUTCOME BYTES SECONDS - DETAIL
 * (SRC and SPORT: where the connection started; "-" where fpclient says whether TCP
 * timestamps were on). Exit status 0 when the run itself
 * worked, 2 for bad arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include <flowpin/quiclb.h>

#include "labutil.h"

#define ALPN	       "flowpin-lab"
#define SERVER_NAME    "flowpin-lab"
#define RANDOM_CID_LEN 9
#define MAX_PKT	       1500
#define MAX_SCIDS      16
#define MAX_STREAMS    4
#define MAX_VIPS       32
#define MAX_TARGETS    32
#define MAX_SOURCES    1024
#define BURST	       16384 /* bytes a rate-limited stream may send ahead */
#define PACE_QUANTUM   1100  /* ... and then at least this much at a time */

/* TLS 1.3 only, the AEADs QUIC allows, no middlebox compatibility mode (no CCS). */
static const char tls_priority[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:"
				   "+AES-256-GCM:+CHACHA20-POLY1305:%DISABLE_TLS13_COMPAT_MODE";
static const gnutls_datum_t alpn = { (unsigned char *)ALPN, sizeof(ALPN) - 1 };

static volatile sig_atomic_t sig_stop, sig_rebind, sig_migrate;
static bool verbose;

static ngtcp2_tstamp ts_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NGTCP2_SECONDS + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		sig_rebind = 1;
	else if (sig == SIGUSR2)
		sig_migrate = 1;
	else
		sig_stop = 1;
}

static void install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void rand_cb(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *ctx)
{
	(void)ctx;
	gnutls_rnd(GNUTLS_RND_RANDOM, dest, destlen);
}

static void debug(const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static void ngtcp2_log(void *user_data, const char *fmt, ...)
{
	va_list ap;

	(void)user_data;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int parse_hex(const char *s, uint8_t *out, size_t max, size_t *len)
{
	size_t n = strlen(s);

	if (n == 0 || n % 2 || n / 2 > max)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1 ||
		    !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
		    !strchr("0123456789abcdefABCDEF", s[2 * i + 1]))
			return -EINVAL;
		out[i] = v;
	}
	*len = n / 2;
	return 0;
}

/* "ADDR:PORT" (IPv4) or "[ADDR]:PORT" (IPv6). */
static int parse_addr_port(const char *arg, struct sockaddr_storage *ss)
{
	char buf[80], *port_s;
	const char *host;
	unsigned long port;
	char *end;

	if (strlen(arg) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, arg);
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		*close = '\0';
		host = buf + 1;
		port_s = close + 2;
	} else {
		port_s = strrchr(buf, ':');
		if (!port_s)
			return -EINVAL;
		*port_s++ = '\0';
		host = buf;
	}
	port = strtoul(port_s, &end, 10);
	if (*end || port == 0 || port > 65535 || lab_parse_addr(host, ss))
		return -EINVAL;
	lab_set_port(ss, port);
	return 0;
}

static void addr_of_path(ngtcp2_addr *a, struct sockaddr_storage *ss)
{
	a->addr = (ngtcp2_sockaddr *)ss;
	a->addrlen = lab_addr_len(ss);
}

static bool same_addr(const ngtcp2_addr *a, const struct sockaddr_storage *ss)
{
	return a->addrlen == lab_addr_len(ss) && !memcmp(a->addr, ss, a->addrlen);
}

/* ================================================================== server */

struct vip {
	int fd;
	struct sockaddr_storage addr;
	bool quic_lb;
	struct fp_quiclb_cfg lb;
	uint8_t server_id[16];
	size_t cid_len;
};

struct sstream {
	int64_t id; /* -1: free */
	char req[128];
	size_t req_len;
	bool req_done;
	uint8_t *resp; /* header line + the content asked for */
	size_t resp_len, sent;
	bool fin_sent;
	uint64_t rate;
	double t_start;
};

struct sconn {
	struct sconn *next;
	struct vip *vip;
	ngtcp2_conn *conn;
	gnutls_session_t tls;
	ngtcp2_crypto_conn_ref ref;
	ngtcp2_cid scids[MAX_SCIDS];
	size_t n_scids;
	ngtcp2_cid odcid; /* the client's first destination CID: its Initials until ours */
	struct sockaddr_storage remote;
	struct sstream streams[MAX_STREAMS];
	bool dead;
};

static struct vip vips[MAX_VIPS];
static int n_vips;
static const char *server_name = "-";
static struct sconn *sconns;
static gnutls_certificate_credentials_t server_cred;
static double opt_idle_timeout = 60;

static int make_cid(struct vip *v, ngtcp2_cid *cid)
{
	size_t len = 0;

	if (!v->quic_lb) {
		cid->datalen = RANDOM_CID_LEN;
		return gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, RANDOM_CID_LEN) ? -EIO : 0;
	}
	/* flowpin's encoder, random nonce: this backend's server ID in every CID. */
	if (fp_quiclb_encode(&v->lb, v->server_id, NULL, cid->data, &len) || len != v->cid_len)
		return -EINVAL;
	cid->datalen = len;
	return 0;
}

static void add_scid(struct sconn *c, const ngtcp2_cid *cid)
{
	if (c->n_scids < MAX_SCIDS)
		c->scids[c->n_scids++] = *cid;
	if (verbose) {
		char hex[2 * NGTCP2_MAX_CIDLEN + 1];

		for (size_t i = 0; i < cid->datalen; i++)
			sprintf(hex + 2 * i, "%02x", cid->data[i]);
		hex[2 * cid->datalen] = '\0';
		fprintf(stderr, "fpquic server %s: connection %p: source CID %s\n", server_name,
			(void *)c, hex);
	}
}

static struct sconn *find_sconn(struct vip *v, const uint8_t *dcid, size_t len)
{
	for (struct sconn *c = sconns; c; c = c->next) {
		if (c->vip != v || c->dead)
			continue;
		if (c->odcid.datalen == len && !memcmp(c->odcid.data, dcid, len))
			return c;
		for (size_t i = 0; i < c->n_scids; i++)
			if (c->scids[i].datalen == len && !memcmp(c->scids[i].data, dcid, len))
				return c;
	}
	return NULL;
}

static int s_get_new_cid(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
			 void *user_data)
{
	struct sconn *c = user_data;

	(void)conn;
	(void)cidlen; /* ngtcp2 asks for the length of the first one: ours */
	if (make_cid(c->vip, cid) ||
	    gnutls_rnd(GNUTLS_RND_RANDOM, token, NGTCP2_STATELESS_RESET_TOKENLEN))
		return NGTCP2_ERR_CALLBACK_FAILURE;
	add_scid(c, cid);
	return 0;
}

static int s_remove_cid(ngtcp2_conn *conn, const ngtcp2_cid *cid, void *user_data)
{
	struct sconn *c = user_data;

	(void)conn;
	for (size_t i = 0; i < c->n_scids; i++) {
		if (ngtcp2_cid_eq(&c->scids[i], cid)) {
			c->scids[i] = c->scids[--c->n_scids];
			break;
		}
	}
	return 0;
}

static struct sstream *sstream_of(struct sconn *c, int64_t id, bool create)
{
	struct sstream *free_slot = NULL;

	for (int i = 0; i < MAX_STREAMS; i++) {
		if (c->streams[i].id == id)
			return &c->streams[i];
		if (c->streams[i].id < 0 && !free_slot)
			free_slot = &c->streams[i];
	}
	if (!create || !free_slot)
		return NULL;
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->id = id;
	return free_slot;
}

/* A complete request line: the answer is made whole now (content is a function). */
static int start_response(struct sstream *s)
{
	unsigned long long off, len, seed, rate;
	char hdr[32];
	int hl;

	s->req[s->req_len] = '\0';
	if (sscanf(s->req, "GET %llu %llu %llu %llu", &off, &len, &seed, &rate) != 4 ||
	    len > (1ULL << 30))
		return -EINVAL;
	hl = snprintf(hdr, sizeof(hdr), "%s\n", server_name);
	s->resp = malloc(hl + len);
	if (!s->resp)
		return -ENOMEM;
	memcpy(s->resp, hdr, hl);
	lab_content(seed, off, s->resp + hl, len);
	s->resp_len = hl + len;
	s->rate = rate;
	s->t_start = lab_now();
	s->req_done = true;
	return 0;
}

static int s_recv_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t stream_id, uint64_t offset,
			      const uint8_t *data, size_t datalen, void *user_data,
			      void *stream_user_data)
{
	struct sconn *c = user_data;
	struct sstream *s = sstream_of(c, stream_id, true);

	(void)offset;
	(void)stream_user_data;
	ngtcp2_conn_extend_max_stream_offset(conn, stream_id, datalen);
	ngtcp2_conn_extend_max_offset(conn, datalen);
	if (!s || s->req_done)
		return 0;
	for (size_t i = 0; i < datalen && !s->req_done; i++) {
		if (data[i] == '\n' || s->req_len + 1 >= sizeof(s->req)) {
			if (start_response(s))
				return NGTCP2_ERR_CALLBACK_FAILURE;
		} else {
			s->req[s->req_len++] = data[i];
		}
	}
	if ((flags & NGTCP2_STREAM_DATA_FLAG_FIN) && !s->req_done && start_response(s))
		return NGTCP2_ERR_CALLBACK_FAILURE;
	return 0;
}

static int s_stream_close(ngtcp2_conn *conn, uint32_t flags, int64_t stream_id,
			  uint64_t app_error_code, void *user_data, void *stream_user_data)
{
	struct sconn *c = user_data;
	struct sstream *s = sstream_of(c, stream_id, false);

	(void)conn;
	(void)flags;
	(void)app_error_code;
	(void)stream_user_data;
	if (s) {
		free(s->resp);
		memset(s, 0, sizeof(*s));
		s->id = -1;
	}
	ngtcp2_conn_extend_max_streams_bidi(conn, 1);
	return 0;
}

static ngtcp2_conn *get_conn_s(ngtcp2_crypto_conn_ref *ref)
{
	return ((struct sconn *)ref->user_data)->conn;
}

static void sconn_free(struct sconn *c)
{
	for (int i = 0; i < MAX_STREAMS; i++)
		free(c->streams[i].resp);
	if (c->conn)
		ngtcp2_conn_del(c->conn);
	if (c->tls)
		gnutls_deinit(c->tls);
	free(c);
}

static int make_server_cred(void)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	uint8_t serial[8];
	time_t t = time(NULL);
	int rv;

	gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
	serial[0] &= 0x7f;
	/* A fresh self-signed certificate per run: the lab's client does not verify it. */
	if ((rv = gnutls_x509_privkey_init(&key)) ||
	    (rv = gnutls_x509_privkey_generate(
		     key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) ||
	    (rv = gnutls_x509_crt_init(&crt)) || (rv = gnutls_x509_crt_set_version(crt, 3)) ||
	    (rv = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) ||
	    (rv = gnutls_x509_crt_set_activation_time(crt, t - 3600)) ||
	    (rv = gnutls_x509_crt_set_expiration_time(crt, t + 30 * 86400)) ||
	    (rv = gnutls_x509_crt_set_dn(crt, "CN=" SERVER_NAME, NULL)) ||
	    (rv = gnutls_x509_crt_set_key(crt, key)) ||
	    (rv = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)) ||
	    (rv = gnutls_certificate_allocate_credentials(&server_cred)) ||
	    (rv = gnutls_certificate_set_x509_key(server_cred, &crt, 1, key))) {
		fprintf(stderr, "fpquic server: certificate: %s\n", gnutls_strerror(rv));
		return -1;
	}
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	return 0;
}

/* The callbacks both ends take from ngtcp2's crypto helpers, and the random source. */
static void base_callbacks(ngtcp2_callbacks *cb)
{
	memset(cb, 0, sizeof(*cb));
	cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
	cb->encrypt = ngtcp2_crypto_encrypt_cb;
	cb->decrypt = ngtcp2_crypto_decrypt_cb;
	cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
	cb->rand = rand_cb;
	cb->update_key = ngtcp2_crypto_update_key_cb;
	cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
	cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
	cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
	cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
}

static struct sconn *accept_conn(struct vip *v, const uint8_t *pkt, size_t len,
				 const struct sockaddr_storage *from)
{
	ngtcp2_callbacks cb;
	ngtcp2_settings settings;
	ngtcp2_transport_params params;
	ngtcp2_pkt_hd hd;
	ngtcp2_cid scid;
	ngtcp2_path path;
	struct sconn *c;

	if (ngtcp2_accept(&hd, pkt, len) != 0)
		return NULL;
	base_callbacks(&cb);
	cb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
	cb.recv_stream_data = s_recv_stream_data;
	cb.stream_close = s_stream_close;
	cb.get_new_connection_id = s_get_new_cid;
	cb.remove_connection_id = s_remove_cid;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	for (int i = 0; i < MAX_STREAMS; i++)
		c->streams[i].id = -1;
	c->vip = v;
	c->remote = *from;
	c->odcid = hd.dcid;
	c->ref.get_conn = get_conn_s;
	c->ref.user_data = c;
	if (make_cid(v, &scid))
		goto fail;
	add_scid(c, &scid);

	ngtcp2_settings_default(&settings);
	settings.initial_ts = ts_now();
	settings.no_pmtud = 1;
	if (getenv("FPQUIC_NGTCP2_LOG"))
		settings.log_printf = ngtcp2_log;
	ngtcp2_transport_params_default(&params);
	params.initial_max_streams_bidi = MAX_STREAMS;
	params.initial_max_stream_data_bidi_remote = 64 * 1024;
	params.initial_max_data = 1024 * 1024;
	params.max_idle_timeout = (ngtcp2_duration)(opt_idle_timeout * NGTCP2_SECONDS);
	/* ngtcp2 0.12 counts the client's connection IDs still bound to old paths against
	 * this limit: after a rebinding and a migration (two old paths) the client's 8
	 * (its pool) plus those exceeded 8 (CONNECTION_ID_LIMIT, the connection died). */
	params.active_connection_id_limit = 8;
	params.original_dcid = hd.dcid;
	params.stateless_reset_token_present = 1;
	gnutls_rnd(GNUTLS_RND_RANDOM, params.stateless_reset_token,
		   sizeof(params.stateless_reset_token));
	addr_of_path(&path.local, &v->addr);
	addr_of_path(&path.remote, &c->remote);
	path.user_data = NULL;
	if (ngtcp2_conn_server_new(&c->conn, &hd.scid, &scid, &path, hd.version, &cb, &settings,
				   &params, NULL, c))
		goto fail;
	if (gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NO_END_OF_EARLY_DATA) ||
	    gnutls_priority_set_direct(c->tls, tls_priority, NULL) ||
	    ngtcp2_crypto_gnutls_configure_server_session(c->tls) ||
	    gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, server_cred) ||
	    gnutls_alpn_set_protocols(c->tls, &alpn, 1, GNUTLS_ALPN_MANDATORY))
		goto fail;
	gnutls_session_set_ptr(c->tls, &c->ref);
	ngtcp2_conn_set_tls_native_handle(c->conn, c->tls);
	c->next = sconns;
	sconns = c;
	return c;
fail:
	sconn_free(c);
	return NULL;
}

static void send_pkt(int fd, const ngtcp2_path *path, const uint8_t *buf, size_t len)
{
	if (sendto(fd, buf, len, MSG_DONTWAIT, path->remote.addr, path->remote.addrlen) < 0)
		debug("sendto: %s\n", strerror(errno));
}

/* Writes whatever the connection has to send, the streams' data within their rate. */
static void sconn_write(struct sconn *c)
{
	uint8_t buf[MAX_PKT];
	ngtcp2_path_storage ps;
	double t = lab_now();

	ngtcp2_path_storage_zero(&ps);
	for (int pkts = 0; pkts < 64; pkts++) {
		struct sstream *s = NULL;
		size_t want = 0;
		uint32_t flags = 0;
		ngtcp2_vec vec;
		ngtcp2_ssize nwrite, ndata = -1;

		for (int i = 0; i < MAX_STREAMS && !s; i++) {
			struct sstream *x = &c->streams[i];

			if (x->id < 0 || !x->req_done || x->fin_sent)
				continue;
			want = x->resp_len - x->sent;
			if (x->rate) {
				double allowed = x->rate * (t - x->t_start) + BURST - x->sent;

				/* Whole packets only: a trickle of tiny ones costs both ends a
				 * packet (and an ACK) per byte of budget. */
				if (allowed < (double)want)
					want = allowed >= PACE_QUANTUM ? (size_t)allowed : 0;
			}
			if (want || x->sent == x->resp_len)
				s = x;
		}
		if (s && s->sent + want == s->resp_len)
			flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
		vec.base = s ? s->resp + s->sent : NULL;
		vec.len = want;
		nwrite =
			ngtcp2_conn_writev_stream(c->conn, &ps.path, NULL, buf, sizeof(buf), &ndata,
						  flags, s ? s->id : -1, &vec, s ? 1 : 0, ts_now());
		if (nwrite < 0) {
			if (s && (nwrite == NGTCP2_ERR_STREAM_DATA_BLOCKED ||
				  nwrite == NGTCP2_ERR_STREAM_SHUT_WR)) {
				/* Blocked by flow control: send what else there is. */
				nwrite = ngtcp2_conn_write_pkt(c->conn, &ps.path, NULL, buf,
							       sizeof(buf), ts_now());
				if (nwrite <= 0)
					break;
				send_pkt(c->vip->fd, &ps.path, buf, nwrite);
				break;
			}
			fprintf(stderr, "fpquic server %s: connection %p: write: %s\n", server_name,
				(void *)c, ngtcp2_strerror((int)nwrite));
			c->dead = true;
			return;
		}
		if (s && ndata >= 0) {
			s->sent += ndata;
			if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && s->sent == s->resp_len)
				s->fin_sent = true;
		}
		if (nwrite == 0)
			break;
		send_pkt(c->vip->fd, &ps.path, buf, nwrite);
	}
}

static void server_read(struct vip *v)
{
	uint8_t buf[65536];

	for (int rounds = 0; rounds < 256; rounds++) {
		struct sockaddr_storage from;
		socklen_t from_len = sizeof(from);
		ssize_t n = recvfrom(v->fd, buf, sizeof(buf), MSG_DONTWAIT,
				     (struct sockaddr *)&from, &from_len);
		ngtcp2_version_cid vc;
		struct sconn *c;
		ngtcp2_path path;
		int rv;

		if (n < 0)
			return;
		rv = ngtcp2_pkt_decode_version_cid(&vc, buf, n, v->cid_len);
		if (rv != 0)
			continue; /* version negotiation is not the lab's subject: drop */
		c = find_sconn(v, vc.dcid, vc.dcidlen);
		if (!c) {
			/* Only a client's Initial may open a connection; a short-header packet
			 * for a connection this server never had is dropped (it stalls). */
			if (!(buf[0] & 0x80)) {
				debug("server: dropped: no connection for its CID (port %u)\n",
				      lab_addr_port(&from));
				continue;
			}
			c = accept_conn(v, buf, n, &from);
			if (!c)
				continue;
		}
		if (from_len != lab_addr_len(&c->remote) || memcmp(&from, &c->remote, from_len)) {
			debug("server: connection %p: packet from a new address (port %u)\n",
			      (void *)c, lab_addr_port(&from));
			c->remote = from;
		}
		addr_of_path(&path.local, &v->addr);
		path.remote.addr = (ngtcp2_sockaddr *)&from;
		path.remote.addrlen = from_len;
		path.user_data = NULL;
		rv = ngtcp2_conn_read_pkt(c->conn, &path, NULL, buf, n, ts_now());
		if (rv) {
			/* The client's goodbye is normal; anything else ends a connection the
			 * client will count as broken: say why. */
			if (rv != NGTCP2_ERR_DRAINING || verbose)
				fprintf(stderr, "fpquic server %s: connection %p closed: %s\n",
					server_name, (void *)c, ngtcp2_strerror(rv));
			c->dead = true;
			continue;
		}
		sconn_write(c);
	}
}

static void server_timers(void)
{
	ngtcp2_tstamp t = ts_now();

	for (struct sconn **pp = &sconns; *pp;) {
		struct sconn *c = *pp;

		if (!c->dead) {
			if (ngtcp2_conn_get_expiry(c->conn) <= t &&
			    ngtcp2_conn_handle_expiry(c->conn, t))
				c->dead = true;
			else
				sconn_write(c);
		}
		if (c->dead) {
			*pp = c->next;
			sconn_free(c);
			continue;
		}
		pp = &c->next;
	}
}

/* ADDR:PORT[/quic-lb=CONFIG_ID,SERVER_ID_HEX,NONCE_LEN[,KEY_HEX]] */
static int parse_vip(const char *arg, struct vip *v)
{
	char buf[256], *lb;

	memset(v, 0, sizeof(*v));
	v->fd = -1;
	v->cid_len = RANDOM_CID_LEN;
	if (strlen(arg) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, arg);
	lb = strstr(buf, "/quic-lb=");
	if (lb) {
		char *f[4] = { 0 }, *save = NULL;
		unsigned long config_id, nonce_len;
		size_t sid_len = 0, key_len = 0;
		int n = 0;

		*lb = '\0';
		for (char *p = strtok_r(lb + 9, ",", &save); p && n < 4;
		     p = strtok_r(NULL, ",", &save))
			f[n++] = p;
		if (n < 3)
			return -EINVAL;
		config_id = strtoul(f[0], NULL, 10);
		nonce_len = strtoul(f[2], NULL, 10);
		if (config_id > 6 || nonce_len < 4 || nonce_len > 18 ||
		    parse_hex(f[1], v->server_id, sizeof(v->server_id), &sid_len) ||
		    (f[3] && (parse_hex(f[3], v->lb.key, sizeof(v->lb.key), &key_len) ||
			      key_len != sizeof(v->lb.key))))
			return -EINVAL;
		v->quic_lb = true;
		v->lb.config_id = config_id;
		v->lb.server_id_len = sid_len;
		v->lb.nonce_len = nonce_len;
		v->lb.encrypted = f[3] != NULL;
		if (fp_quiclb_cfg_check(&v->lb))
			return -EINVAL;
		v->cid_len = fp_quiclb_cid_len(&v->lb);
	}
	return parse_addr_port(buf, &v->addr);
}

static int open_vip(struct vip *v, int epfd)
{
	int one = 1;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = v };
	char a[INET6_ADDRSTRLEN];

	v->fd = socket(v->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (v->fd < 0)
		return -errno;
	/* The VIP may not be on lo yet when the server starts (the agent adds it). */
	setsockopt(v->fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	if (v->addr.ss_family == AF_INET6)
		setsockopt(v->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(v->fd, (struct sockaddr *)&v->addr, lab_addr_len(&v->addr)) < 0) {
		fprintf(stderr, "fpquic server: bind %s: %s\n",
			lab_addr_str(&v->addr, a, sizeof(a)), strerror(errno));
		return -errno;
	}
	epoll_ctl(epfd, EPOLL_CTL_ADD, v->fd, &ev);
	return 0;
}

static int cmd_server(int argc, char **argv)
{
	int epfd;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-v")) {
			verbose = true;
			continue;
		}
		if (!val)
			goto usage;
		i++;
		if (!strcmp(a, "--name")) {
			server_name = val;
		} else if (!strcmp(a, "--vip")) {
			if (n_vips == MAX_VIPS || parse_vip(val, &vips[n_vips])) {
				fprintf(stderr, "fpquic server: --vip: bad value '%s'\n", val);
				return 2;
			}
			n_vips++;
		} else if (!strcmp(a, "--idle-timeout")) {
			if (lab_parse_double(val, &opt_idle_timeout) || opt_idle_timeout < 1)
				goto usage;
		} else {
			goto usage;
		}
	}
	if (!n_vips)
		goto usage;
	if (make_server_cred())
		return 1;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < n_vips; i++)
		if (open_vip(&vips[i], epfd))
			return 1;
	install_signals();
	fprintf(stderr, "fpquic server %s: serving %d VIPs\n", server_name, n_vips);
	while (!sig_stop) {
		struct epoll_event ev[32];
		int n = epoll_wait(epfd, ev, 32, 5);

		for (int i = 0; i < n; i++)
			server_read(ev[i].data.ptr);
		server_timers();
	}
	while (sconns) {
		struct sconn *c = sconns;

		sconns = c->next;
		sconn_free(c);
	}
	return 0;
usage:
	fprintf(stderr, "usage: fpquic server --name NAME --vip ADDR:PORT[/quic-lb=CONFIG_ID,"
			"SERVER_ID_HEX,NONCE_LEN[,KEY_HEX]] ... [--idle-timeout S] [-v]\n");
	return 2;
}

/* ================================================================== client */

enum phase { PH_WAIT, PH_HANDSHAKE, PH_BODY, PH_IDLE, PH_DONE };

struct target {
	char name[32];
	struct sockaddr_storage addr;
	unsigned n_flows, n_outcome[LAB_OUTCOMES];
};

struct qflow {
	int target, source;
	int fd;
	struct sockaddr_storage local; /* the socket's address: the path's local end */
	ngtcp2_conn *conn;
	gnutls_session_t tls;
	ngtcp2_crypto_conn_ref ref;
	enum phase phase;
	enum lab_outcome outcome;
	char detail[64];
	char backend[32];
	char start_src[INET6_ADDRSTRLEN];
	uint16_t start_port;
	int64_t stream_id;
	char req[128];
	size_t req_len, req_sent;
	uint64_t range_start, range_end, received, total;
	char hdr[32];
	size_t hdr_len;
	bool hdr_done;
	double t_launch, t_progress, t_idle_until, t_end;
	unsigned moves;
};

static struct target targets[MAX_TARGETS];
static int n_targets;
static struct sockaddr_storage sources[MAX_SOURCES];
static int n_sources;
static struct qflow *qflows;
static unsigned n_qflows;
static uint64_t opt_size, opt_seed = 1, opt_idle_at, opt_rate, opt_ask_seed = UINT64_MAX;
static double opt_idle_for, opt_timeout = 120, opt_stall = 3, opt_ramp = 1;
static double opt_rebind_at = -1, opt_migrate_at = -1;
static bool opt_every_move;
static gnutls_certificate_credentials_t client_cred;
static int epfd = -1;

static void close_conn(struct qflow *f, bool say_goodbye)
{
	if (f->conn && f->fd >= 0 && say_goodbye) {
		uint8_t buf[MAX_PKT];
		ngtcp2_path_storage ps;
		ngtcp2_connection_close_error ccerr;
		ngtcp2_ssize n;

		ngtcp2_path_storage_zero(&ps);
		ngtcp2_connection_close_error_default(&ccerr);
		n = ngtcp2_conn_write_connection_close(f->conn, &ps.path, NULL, buf, sizeof(buf),
						       &ccerr, ts_now());
		if (n > 0)
			send(f->fd, buf, n, MSG_DONTWAIT);
	}
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (f->conn)
		ngtcp2_conn_del(f->conn);
	f->conn = NULL;
	if (f->tls)
		gnutls_deinit(f->tls);
	f->tls = NULL;
}

static void finish(struct qflow *f, enum lab_outcome o, const char *detail)
{
	if (f->outcome != OUT_RUNNING)
		return;
	f->outcome = o;
	f->phase = PH_DONE;
	f->t_end = lab_now();
	snprintf(f->detail, sizeof(f->detail), "%s", detail && *detail ? detail : "-");
}

/* A finished flow's connection goes, outside ngtcp2's callbacks (finish() may run in
 * one). Any end says goodbye, so no server keeps sending into a finished flow. */
static void reap(struct qflow *f)
{
	if (f->phase == PH_DONE && (f->conn || f->fd >= 0))
		close_conn(f, true);
}

/* A UDP socket on `src` (kernel-chosen port) connected to the target; its address in
 * f->local. Returns the fd or -errno. */
static int open_socket(struct qflow *f, const struct sockaddr_storage *src)
{
	const struct target *t = &targets[f->target];
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = f };
	socklen_t len = sizeof(f->local);
	int fd = socket(t->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, (const struct sockaddr *)src, lab_addr_len(src)) < 0 ||
	    connect(fd, (const struct sockaddr *)&t->addr, lab_addr_len(&t->addr)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&f->local, &len) < 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
	return fd;
}

static void start_request(struct qflow *f, uint64_t start, uint64_t end)
{
	int rv = ngtcp2_conn_open_bidi_stream(f->conn, &f->stream_id, NULL);

	if (rv) {
		finish(f, OUT_RESET, "open-stream");
		return;
	}
	f->range_start = start;
	f->range_end = end;
	f->received = 0;
	f->hdr_len = 0;
	f->hdr_done = false;
	f->req_len =
		snprintf(f->req, sizeof(f->req), "GET %llu %llu %llu %llu\n",
			 (unsigned long long)start, (unsigned long long)(end - start),
			 (unsigned long long)(opt_ask_seed != UINT64_MAX ? opt_ask_seed : opt_seed),
			 (unsigned long long)opt_rate);
	f->req_sent = 0;
	f->phase = PH_BODY;
	f->t_progress = lab_now();
}

static int c_handshake_completed(ngtcp2_conn *conn, void *user_data)
{
	struct qflow *f = user_data;

	(void)conn;
	start_request(f, 0, opt_idle_at && opt_idle_at < opt_size ? opt_idle_at : opt_size);
	return 0;
}

static void on_body(struct qflow *f, const uint8_t *data, size_t len)
{
	char d[64];

	if (lab_check_piece(opt_seed, f->range_start + f->received,
			    f->range_end - f->range_start - f->received, data, len, d, sizeof(d))) {
		finish(f, OUT_CORRUPTED, d);
		return;
	}
	f->received += len;
	f->total += len;
	f->t_progress = lab_now();
}

static int c_recv_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t stream_id, uint64_t offset,
			      const uint8_t *data, size_t datalen, void *user_data,
			      void *stream_user_data)
{
	struct qflow *f = user_data;

	(void)offset;
	(void)stream_user_data;
	ngtcp2_conn_extend_max_stream_offset(conn, stream_id, datalen);
	ngtcp2_conn_extend_max_offset(conn, datalen);
	if (f->phase != PH_BODY || stream_id != f->stream_id)
		return 0;
	while (datalen && !f->hdr_done && f->phase == PH_BODY) {
		char ch = *data++;

		datalen--;
		if (ch == '\n') {
			f->hdr[f->hdr_len] = '\0';
			if (f->backend[0] && strcmp(f->backend, "-") && strcmp(f->backend, f->hdr))
				finish(f, OUT_CORRUPTED, "other-backend");
			snprintf(f->backend, sizeof(f->backend), "%s", f->hdr);
			f->hdr_done = true;
		} else if (f->hdr_len + 1 >= sizeof(f->hdr)) {
			finish(f, OUT_CORRUPTED, "header-too-long");
		} else {
			f->hdr[f->hdr_len++] = ch;
		}
	}
	if (datalen && f->phase == PH_BODY)
		on_body(f, data, datalen);
	if (f->phase != PH_BODY || !(flags & NGTCP2_STREAM_DATA_FLAG_FIN))
		return 0;
	if (f->received != f->range_end - f->range_start) {
		finish(f, OUT_CORRUPTED, f->hdr_done ? "short" : "no-header");
		return 0;
	}
	if (f->range_end == opt_size) {
		finish(f, OUT_COMPLETED, NULL);
		return 0;
	}
	/* First piece done: silence, then the rest on a new stream of the same connection. */
	f->phase = PH_IDLE;
	f->t_idle_until = lab_now() + opt_idle_for;
	return 0;
}

/* The client's own connection IDs: random (no load balancer routes to a client). */
static int c_get_new_cid(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
			 void *user_data)
{
	(void)conn;
	(void)user_data;
	cid->datalen = cidlen;
	if (gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, cidlen) ||
	    gnutls_rnd(GNUTLS_RND_RANDOM, token, NGTCP2_STATELESS_RESET_TOKENLEN))
		return NGTCP2_ERR_CALLBACK_FAILURE;
	return 0;
}

static ngtcp2_conn *get_conn_c(ngtcp2_crypto_conn_ref *ref)
{
	return ((struct qflow *)ref->user_data)->conn;
}

static void launch(struct qflow *f)
{
	ngtcp2_callbacks cb;
	const struct target *t = &targets[f->target];
	ngtcp2_settings settings;
	ngtcp2_transport_params params;
	ngtcp2_cid dcid, scid;
	ngtcp2_path path;
	int fd;

	base_callbacks(&cb);
	cb.client_initial = ngtcp2_crypto_client_initial_cb;
	cb.handshake_completed = c_handshake_completed;
	cb.recv_stream_data = c_recv_stream_data;
	cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
	cb.get_new_connection_id = c_get_new_cid;
	f->t_launch = f->t_progress = lab_now();
	f->phase = PH_HANDSHAKE;
	fd = open_socket(f, &sources[f->source]);
	if (fd < 0) {
		char d[64];

		snprintf(d, sizeof(d), "socket:%s", strerrorname_np(-fd) ?: "?");
		finish(f, OUT_RESET, d);
		return;
	}
	f->fd = fd;
	lab_addr_str(&f->local, f->start_src, sizeof(f->start_src));
	f->start_port = lab_addr_port(&f->local);
	f->ref.get_conn = get_conn_c;
	f->ref.user_data = f;
	dcid.datalen = NGTCP2_MIN_INITIAL_DCIDLEN;
	scid.datalen = 8;
	gnutls_rnd(GNUTLS_RND_RANDOM, dcid.data, dcid.datalen);
	gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen);
	ngtcp2_settings_default(&settings);
	settings.initial_ts = ts_now();
	settings.no_pmtud = 1;
	settings.handshake_timeout = (ngtcp2_duration)(opt_stall * NGTCP2_SECONDS);
	if (getenv("FPQUIC_NGTCP2_LOG"))
		settings.log_printf = ngtcp2_log;
	ngtcp2_transport_params_default(&params);
	params.initial_max_stream_data_bidi_local = 256 * 1024;
	params.initial_max_data = 1024 * 1024;
	params.max_idle_timeout = (ngtcp2_duration)(opt_timeout * NGTCP2_SECONDS);
	/* Room for spare connection IDs: an active migration needs an unused one. */
	params.active_connection_id_limit = 8;
	addr_of_path(&path.local, &f->local);
	addr_of_path(&path.remote, (struct sockaddr_storage *)&t->addr);
	path.user_data = NULL;
	if (ngtcp2_conn_client_new(&f->conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb,
				   &settings, &params, NULL, f) ||
	    gnutls_init(&f->tls, GNUTLS_CLIENT | GNUTLS_NO_END_OF_EARLY_DATA) ||
	    gnutls_priority_set_direct(f->tls, tls_priority, NULL) ||
	    ngtcp2_crypto_gnutls_configure_client_session(f->tls) ||
	    gnutls_credentials_set(f->tls, GNUTLS_CRD_CERTIFICATE, client_cred) ||
	    gnutls_alpn_set_protocols(f->tls, &alpn, 1, GNUTLS_ALPN_MANDATORY) ||
	    gnutls_server_name_set(f->tls, GNUTLS_NAME_DNS, SERVER_NAME, strlen(SERVER_NAME))) {
		finish(f, OUT_RESET, "setup");
		return;
	}
	gnutls_session_set_ptr(f->tls, &f->ref);
	ngtcp2_conn_set_tls_native_handle(f->conn, f->tls);
}

static void fatal_error(struct qflow *f, int rv, const char *where)
{
	char d[64];

	if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
		finish(f, OUT_TIMEOUT, "handshake");
		return;
	}
	snprintf(d, sizeof(d), "%s:%s", where,
		 rv == NGTCP2_ERR_DRAINING ? "closed" : ngtcp2_strerror(rv));
	finish(f, OUT_RESET, d);
}

static void client_write(struct qflow *f)
{
	uint8_t buf[MAX_PKT];
	ngtcp2_path_storage ps;

	ngtcp2_path_storage_zero(&ps);
	for (int pkts = 0; pkts < 64 && f->conn && f->phase != PH_DONE; pkts++) {
		bool req = f->phase == PH_BODY && f->req_sent < f->req_len;
		ngtcp2_vec vec = { (uint8_t *)f->req + f->req_sent, f->req_len - f->req_sent };
		ngtcp2_ssize ndata = -1;
		ngtcp2_ssize n = ngtcp2_conn_writev_stream(
			f->conn, &ps.path, NULL, buf, sizeof(buf), &ndata,
			req ? NGTCP2_WRITE_STREAM_FLAG_FIN : 0, req ? f->stream_id : -1, &vec,
			req ? 1 : 0, ts_now());

		if (n < 0) {
			if (req && n == NGTCP2_ERR_STREAM_DATA_BLOCKED)
				break;
			fatal_error(f, (int)n, "write");
			return;
		}
		if (req && ndata > 0)
			f->req_sent += ndata;
		if (n == 0)
			break;
		/* A packet for a path whose socket is gone (an old path) is lost, as it
		 * would be on the network the client left. */
		if (same_addr(&ps.path.local, &f->local))
			send(f->fd, buf, n, MSG_DONTWAIT);
	}
}

static void client_read(struct qflow *f)
{
	uint8_t buf[65536];
	const struct target *t = &targets[f->target];

	for (int rounds = 0; rounds < 64 && f->phase != PH_DONE; rounds++) {
		ssize_t n = recv(f->fd, buf, sizeof(buf), MSG_DONTWAIT);
		ngtcp2_path path;
		int rv;

		if (n < 0)
			break;
		addr_of_path(&path.local, &f->local);
		addr_of_path(&path.remote, (struct sockaddr_storage *)&t->addr);
		path.user_data = NULL;
		rv = ngtcp2_conn_read_pkt(f->conn, &path, NULL, buf, n, ts_now());
		if (rv) {
			fatal_error(f, rv, "read");
			return;
		}
	}
	client_write(f);
	reap(f);
}

/* Moves the connection to a new socket: rebind (same address, new port, QUIC not
 * told) or migrate (the next address of the family, active migration). */
static void move(struct qflow *f, bool migrate)
{
	const struct target *t = &targets[f->target];
	struct sockaddr_storage src = sources[f->source], old = f->local;
	ngtcp2_path path;
	int fd, rv;

	if (!f->conn || f->phase == PH_DONE || f->phase == PH_HANDSHAKE)
		return;
	if (migrate) {
		int next = f->source + 1;

		f->source = lab_next_source(sources, n_sources, src.ss_family == AF_INET6, &next);
		src = sources[f->source];
	}
	lab_set_port(&src, 0);
	fd = open_socket(f, &src);
	if (fd < 0) {
		f->local = old;
		finish(f, OUT_RESET, "move-socket");
		return;
	}
	close(f->fd);
	f->fd = fd;
	addr_of_path(&path.local, &f->local);
	addr_of_path(&path.remote, (struct sockaddr_storage *)&t->addr);
	path.user_data = NULL;
	if (migrate) {
		rv = ngtcp2_conn_initiate_immediate_migration(f->conn, &path, ts_now());
		if (rv) {
			fatal_error(f, rv, "migrate");
			return;
		}
	} else {
		ngtcp2_conn_set_local_addr(f->conn, &path.local);
		/* The next packet through a new NAT mapping is what reveals it. A download's
		 * client sends only ACKs, for data the server now sends to the old address:
		 * it would wait forever. So a PING goes out at once (a keep-alive that is
		 * due now, then keep-alive off again). */
		ngtcp2_conn_set_keep_alive_timeout(f->conn, 1);
		if ((rv = ngtcp2_conn_handle_expiry(f->conn, ts_now()))) {
			fatal_error(f, rv, "rebind");
			return;
		}
	}
	f->moves++;
	client_write(f);
	ngtcp2_conn_set_keep_alive_timeout(f->conn, 0);
	reap(f);
}

static void usage_client(void)
{
	fprintf(stderr,
		"usage: fpquic client --target NAME=ADDR:PORT ... --source ADDR ... --flows N\n"
		"                     --size BYTES --seed N [--rate B/S] [--timeout S] [--stall "
		"S]\n"
		"                     [--ramp S] [--idle-at BYTES --idle-for S] [--rebind-at S]\n"
		"                     [--migrate-at S] [--every-move] [--out FILE] [--ask-seed N] "
		"[-v]\n"
		"  --flows is per target; IPv6 targets use the IPv6 sources, IPv4 the IPv4 ones\n");
}

static int parse_target(const char *arg, struct target *t)
{
	const char *eq = strchr(arg, '=');

	if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(t->name))
		return -EINVAL;
	snprintf(t->name, sizeof(t->name), "%.*s", (int)(eq - arg), arg);
	return parse_addr_port(eq + 1, &t->addr);
}

static void move_all(bool migrate, double t0)
{
	unsigned n = 0;

	for (unsigned i = 0; i < n_qflows; i++) {
		unsigned before = qflows[i].moves;

		/* One move per connection unless --every-move: of each target's connections
		 * the even-numbered rebind, the odd-numbered migrate. ngtcp2 0.12's server
		 * counts the client's connection IDs still bound to old paths against its
		 * limit of 8: a second move while the first one's old path is kept killed
		 * connections (CONNECTION_ID_LIMIT), 75 of 180 on the loaded machine with
		 * moves 4 s apart. */
		if (!opt_every_move && (i / n_targets) % 2 != migrate)
			continue;
		move(&qflows[i], migrate);
		n += qflows[i].moves != before;
	}
	fprintf(stderr, "fpquic: %.1fs %s: %u connections moved\n", lab_now() - t0,
		migrate ? "migrate (new address, active migration)" : "rebind (new port)", n);
}

static int cmd_client(int argc, char **argv)
{
	uint64_t per_target = 0;
	const char *out_path = NULL;
	FILE *out = stdout;
	int src_of_family[2] = { 0, 0 }, next_src[2] = { 0, 0 };
	double t0;
	unsigned launched = 0, open_flows;
	bool announced = false;
	int ret = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int err = 0;

		if (!strcmp(a, "-v")) {
			verbose = true;
			continue;
		}
		if (!strcmp(a, "--every-move")) {
			opt_every_move = true;
			continue;
		}
		if (!v) {
			fprintf(stderr, "fpquic client: %s needs a value\n", a);
			usage_client();
			return 2;
		}
		i++;
		if (!strcmp(a, "--target"))
			err = n_targets == MAX_TARGETS ? -E2BIG
						       : parse_target(v, &targets[n_targets++]);
		else if (!strcmp(a, "--source"))
			err = n_sources == MAX_SOURCES ? -E2BIG
						       : lab_parse_addr(v, &sources[n_sources++]);
		else if (!strcmp(a, "--flows"))
			err = lab_parse_u64(v, &per_target);
		else if (!strcmp(a, "--size"))
			err = lab_parse_u64(v, &opt_size);
		else if (!strcmp(a, "--seed"))
			err = lab_parse_u64(v, &opt_seed);
		else if (!strcmp(a, "--ask-seed"))
			err = lab_parse_u64(v, &opt_ask_seed);
		else if (!strcmp(a, "--rate"))
			err = lab_parse_u64(v, &opt_rate);
		else if (!strcmp(a, "--timeout"))
			err = lab_parse_double(v, &opt_timeout);
		else if (!strcmp(a, "--stall"))
			err = lab_parse_double(v, &opt_stall);
		else if (!strcmp(a, "--ramp"))
			err = lab_parse_double(v, &opt_ramp);
		else if (!strcmp(a, "--idle-at"))
			err = lab_parse_u64(v, &opt_idle_at);
		else if (!strcmp(a, "--idle-for"))
			err = lab_parse_double(v, &opt_idle_for);
		else if (!strcmp(a, "--rebind-at"))
			err = lab_parse_double(v, &opt_rebind_at);
		else if (!strcmp(a, "--migrate-at"))
			err = lab_parse_double(v, &opt_migrate_at);
		else if (!strcmp(a, "--out"))
			out_path = v;
		else {
			fprintf(stderr, "fpquic client: unknown option '%s'\n", a);
			usage_client();
			return 2;
		}
		if (err) {
			fprintf(stderr, "fpquic client: %s: bad value '%s'\n", a, v);
			return 2;
		}
	}
	for (int s = 0; s < n_sources; s++)
		src_of_family[sources[s].ss_family == AF_INET6]++;
	if (!n_targets || !per_target || !opt_size || opt_stall <= 0) {
		fprintf(stderr, "fpquic client: --target, --flows and --size are required\n");
		usage_client();
		return 2;
	}
	for (int t = 0; t < n_targets; t++) {
		if (!src_of_family[targets[t].addr.ss_family == AF_INET6]) {
			fprintf(stderr, "fpquic client: target %s: no --source of its family\n",
				targets[t].name);
			return 2;
		}
	}
	if (out_path && !(out = fopen(out_path, "w"))) {
		fprintf(stderr, "fpquic client: %s: %s\n", out_path, strerror(errno));
		return 1;
	}
	struct rlimit rl = { .rlim_cur = 65536, .rlim_max = 65536 };

	setrlimit(RLIMIT_NOFILE, &rl);
	n_qflows = per_target * n_targets;
	qflows = calloc(n_qflows, sizeof(*qflows));
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!qflows || epfd < 0 || gnutls_certificate_allocate_credentials(&client_cred)) {
		fprintf(stderr, "fpquic client: out of memory\n");
		ret = 1;
		goto out;
	}
	for (unsigned i = 0; i < n_qflows; i++) {
		struct qflow *f = &qflows[i];
		int fam;

		f->fd = -1;
		f->target = i % n_targets;
		fam = targets[f->target].addr.ss_family == AF_INET6;
		f->source = lab_next_source(sources, n_sources, fam, &next_src[fam]);
		targets[f->target].n_flows++;
		snprintf(f->backend, sizeof(f->backend), "-");
		snprintf(f->start_src, sizeof(f->start_src), "-");
	}
	install_signals();
	t0 = lab_now();
	open_flows = n_qflows;
	while (open_flows && !sig_stop) {
		struct epoll_event events[256];
		double t = lab_now();
		unsigned due =
			opt_ramp > 0 ? (unsigned)((t - t0) / opt_ramp * n_qflows) + 1 : n_qflows;
		int n;

		if (due > n_qflows)
			due = n_qflows;
		while (launched < due) {
			launch(&qflows[launched]);
			client_write(&qflows[launched]);
			reap(&qflows[launched++]);
		}
		if (launched == n_qflows && !announced) {
			fprintf(stderr, "fpquic: started %u flows\n", n_qflows);
			announced = true;
		}
		if (sig_rebind || (opt_rebind_at >= 0 && t - t0 >= opt_rebind_at)) {
			sig_rebind = 0;
			opt_rebind_at = -1;
			move_all(false, t0);
		}
		if (sig_migrate || (opt_migrate_at >= 0 && t - t0 >= opt_migrate_at)) {
			sig_migrate = 0;
			opt_migrate_at = -1;
			move_all(true, t0);
		}
		n = epoll_wait(epfd, events, 256, 5);
		for (int i = 0; i < n; i++) {
			struct qflow *f = events[i].data.ptr;

			if (f->phase != PH_DONE)
				client_read(f);
		}
		t = lab_now();
		open_flows = n_qflows - launched;
		for (unsigned i = 0; i < launched; i++) {
			struct qflow *f = &qflows[i];
			ngtcp2_tstamp ts = ts_now();

			if (f->phase == PH_DONE)
				continue;
			if (t - f->t_launch > opt_timeout) {
				finish(f, OUT_TIMEOUT, "deadline");
			} else if (f->phase == PH_HANDSHAKE && t - f->t_launch > opt_stall) {
				finish(f, OUT_TIMEOUT, "handshake");
			} else if (f->phase == PH_IDLE) {
				if (t >= f->t_idle_until)
					start_request(f, f->range_end, opt_size);
			} else if (f->phase == PH_BODY && t - f->t_progress > opt_stall) {
				finish(f, OUT_STALLED, f->hdr_done ? "body" : "header");
			}
			if (f->conn && ngtcp2_conn_get_expiry(f->conn) <= ts) {
				int rv = ngtcp2_conn_handle_expiry(f->conn, ts);

				if (rv)
					fatal_error(f, rv, "timer");
			}
			client_write(f);
			reap(f);
			open_flows += f->phase != PH_DONE;
		}
	}
	for (unsigned i = 0; i < n_qflows; i++) {
		struct qflow *f = &qflows[i];

		if (f->outcome == OUT_RUNNING) {
			if (!f->t_launch)
				f->t_launch = lab_now();
			finish(f, OUT_TIMEOUT, sig_stop ? "stopped" : "not-finished");
		}
		reap(f);
		targets[f->target].n_outcome[f->outcome]++;
		/* TS (fpclient's TCP timestamps field): "-", QUIC has none. */
		fprintf(out, "flow %s %s %u %s %s %llu %.3f - %s\n", targets[f->target].name,
			f->start_src, f->start_port, f->backend, lab_outcome_name[f->outcome],
			(unsigned long long)f->total, f->t_end - t0, f->detail);
	}
	for (int t = 0; t < n_targets; t++) {
		const struct target *tg = &targets[t];

		lab_print_summary("fpquic", tg->name, tg->n_flows, tg->n_outcome);
	}
out:
	if (out && out != stdout && fclose(out)) {
		fprintf(stderr, "fpquic client: %s: write failed\n", out_path);
		ret = 1;
	}
	free(qflows);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "server"))
		return cmd_server(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "client"))
		return cmd_client(argc - 1, argv + 1);
	fprintf(stderr, "usage: fpquic server|client ... (see the comment at the top of "
			"lab/fpquic.c)\n");
	return 2;
}
