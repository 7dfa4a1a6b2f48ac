/* SPDX-License-Identifier: MIT */
/* TLS of the OTLP exporters with OpenSSL 3 (tls.h). */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "otlp_conf.h"

#define TLS_RECORD 16384 /* the largest TLS record's plaintext */

struct tls_ctx {
	SSL_CTX *ctx;
	char name[32];
	char *url;
	char *verify_name; /* host name or IP checked and sent as SNI */
	bool verify_ip;
	bool has_client_cert;
	bool h2;
	struct tls_counters c;
};

struct tls_conn {
	struct tls_ctx *x;
	SSL *ssl;
	int fd;
	bool ktls_send;
	bool cfg_error;
	/*
	 * The user-space record path (TLS 1.3, AES-GCM or ChaCha20-Poly1305):
	 * records are sealed here with EVP reading the caller's iovecs (the
	 * ring) directly into `out`; OpenSSL keeps the handshake and the read
	 * side. The client application traffic secret comes from the key log
	 * callback. A KeyUpdate from the server ends the connection (OpenSSL
	 * would answer it with its own, unused, write sequence).
	 */
	bool direct;
	bool key_update_seen;
	uint8_t secret[64];
	size_t secret_len;
	EVP_CIPHER_CTX *cctx;
	uint8_t iv[12];
	uint64_t seq;
	uint8_t *out;        /* one sealed record */
	size_t out_len, out_off, out_plain;
	const void *out_src;
	uint8_t *stage;      /* userspace mode: one record's plaintext */
	size_t pend;         /* bytes of stage SSL_write has yet to take */
	const void *pend_src;
	char err[512];
};

static void tls_keylog(const SSL *ssl, const char *line);

static void ssl_err_text(char *out, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	if (e)
		ERR_error_string_n(e, out, len);
	else
		snprintf(out, len, "no detail");
	ERR_clear_error();
}

/* The CA store (otlp.tls_ca_file, else the system's) and the client
 * certificate and key, if any. 0 or -1 with err set. */
static int tls_ctx_load(struct tls_ctx *x, const struct otlp_conf *c, const char *name, char *err,
			size_t errlen)
{
	char e[256];
	if (c->tls_ca_file) {
		if (!SSL_CTX_load_verify_locations(x->ctx, c->tls_ca_file, NULL)) {
			ssl_err_text(e, sizeof(e));
			snprintf(err, errlen, "exporter %s: CA file '%s' (%s): %s", name, c->tls_ca_file,
				 c->src_tls_ca, e);
			return -1;
		}
	} else if (!SSL_CTX_set_default_verify_paths(x->ctx)) {
		ssl_err_text(e, sizeof(e));
		snprintf(err, errlen, "exporter %s: cannot load the system CA store: %s", name, e);
		return -1;
	}
	if (c->tls_cert_file) {
		if (!SSL_CTX_use_certificate_chain_file(x->ctx, c->tls_cert_file)) {
			ssl_err_text(e, sizeof(e));
			snprintf(err, errlen, "exporter %s: client certificate '%s' (%s): %s", name,
				 c->tls_cert_file, c->src_tls_cert, e);
			return -1;
		}
		if (!SSL_CTX_use_PrivateKey_file(x->ctx, c->tls_key_file, SSL_FILETYPE_PEM)) {
			ssl_err_text(e, sizeof(e));
			snprintf(err, errlen, "exporter %s: client key '%s' (%s): %s", name,
				 c->tls_key_file, c->src_tls_key, e);
			return -1;
		}
		if (!SSL_CTX_check_private_key(x->ctx)) {
			ssl_err_text(e, sizeof(e));
			snprintf(err, errlen, "exporter %s: client key '%s' does not match certificate "
				 "'%s': %s", name, c->tls_key_file, c->tls_cert_file, e);
			return -1;
		}
		x->has_client_cert = true;
	}
	return 0;
}

int tls_ctx_new(const struct otlp_conf *c, bool h2, const char *name, struct tls_ctx **out,
		char *err, size_t errlen)
{
	struct tls_ctx *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	snprintf(x->name, sizeof(x->name), "%s", name);
	x->h2 = h2;
	x->url = strdup(c->url ? c->url : "");
	x->verify_name = strdup(c->tls_server_name ? c->tls_server_name : c->u.host);
	if (!x->url || !x->verify_name)
		goto oom;
	unsigned char ip[16];
	x->verify_ip = inet_pton(AF_INET, x->verify_name, ip) == 1 ||
		       inet_pton(AF_INET6, x->verify_name, ip) == 1;
	x->ctx = SSL_CTX_new(TLS_client_method());
	if (!x->ctx)
		goto oom;
	SSL_CTX_set_min_proto_version(x->ctx, c->tls_min_version ? c->tls_min_version
								  : TLS1_2_VERSION);
	long opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF;
#ifdef SSL_OP_ENABLE_KTLS
	opts |= SSL_OP_ENABLE_KTLS; /* used when the kernel has the tls ULP */
#endif
	SSL_CTX_set_options(x->ctx, opts);
	SSL_CTX_set_mode(x->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* no session cache of ours: one long-lived connection per exporter */
	SSL_CTX_set_session_cache_mode(x->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_keylog_callback(x->ctx, tls_keylog);
	if (tls_ctx_load(x, c, name, err, errlen))
		goto fail;
	if (c->tls_insecure_skip_verify) {
		SSL_CTX_set_verify(x->ctx, SSL_VERIFY_NONE, NULL);
		log_warn("exporter %s: %s: TLS server certificate verification is OFF "
			 "(otlp.tls_insecure_skip_verify): anyone on the path can read and change "
			 "the spans",
			 name, x->url);
	} else {
		SSL_CTX_set_verify(x->ctx, SSL_VERIFY_PEER, NULL);
	}
	static const unsigned char alpn_h2[] = "\x02h2", alpn_h1[] = "\x08http/1.1";
	if (h2 ? SSL_CTX_set_alpn_protos(x->ctx, alpn_h2, 3)
	       : SSL_CTX_set_alpn_protos(x->ctx, alpn_h1, 9)) {
		snprintf(err, errlen, "exporter %s: cannot set ALPN", name);
		goto fail;
	}
	*out = x;
	return 0;
oom:
	snprintf(err, errlen, "exporter %s: TLS: out of memory", name);
	tls_ctx_free(x);
	return -ENOMEM;
fail:
	tls_ctx_free(x);
	return -EINVAL;
}

/* The key log callback: only the client's application traffic secret is kept. */
static void tls_keylog(const SSL *ssl, const char *line)
{
	struct tls_conn *t = SSL_get_app_data(ssl);
	static const char tag[] = "CLIENT_TRAFFIC_SECRET_0 ";
	if (!t || strncmp(line, tag, sizeof(tag) - 1) != 0)
		return;
	const char *p = strchr(line + sizeof(tag) - 1, ' '); /* after the client random */
	if (!p)
		return;
	p++;
	size_t n = 0;
	while (p[0] && p[1] && n < sizeof(t->secret)) {
		int hi = OPENSSL_hexchar2int((unsigned char)p[0]), lo = OPENSSL_hexchar2int((unsigned char)p[1]);
		if (hi < 0 || lo < 0)
			return;
		t->secret[n++] = (uint8_t)(hi << 4 | lo);
		p += 2;
	}
	t->secret_len = n;
}

/* Received handshake messages: a KeyUpdate (type 24) is noted. */
static void tls_msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
		       SSL *ssl, void *arg)
{
	(void)version;
	(void)ssl;
	struct tls_conn *t = arg;
	if (!write_p && content_type == SSL3_RT_HANDSHAKE && len >= 1 &&
	    ((const uint8_t *)buf)[0] == 24)
		t->key_update_seen = true;
}

/* HKDF-Expand-Label (RFC 8446 7.1) for outputs no longer than the hash. */
static int hkdf_expand_label(const EVP_MD *md, const uint8_t *secret, size_t slen,
			     const char *label, uint8_t *out, size_t outlen)
{
	uint8_t info[64], blk[EVP_MAX_MD_SIZE];
	size_t ll = strlen(label), n = 0;
	if (outlen > (size_t)EVP_MD_get_size(md) || ll + 6 > 255)
		return -1;
	info[n++] = (uint8_t)(outlen >> 8);
	info[n++] = (uint8_t)outlen;
	info[n++] = (uint8_t)(6 + ll);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, ll);
	n += ll;
	info[n++] = 0; /* empty context */
	info[n++] = 1; /* HKDF-Expand: T(1) = HMAC(secret, info | 0x01) */
	unsigned int bl = 0;
	if (!HMAC(md, secret, (int)slen, info, n, blk, &bl))
		return -1;
	memcpy(out, blk, outlen);
	OPENSSL_cleanse(blk, sizeof(blk));
	return 0;
}

/* After the handshake: the user-space record path when it applies. */
static void tls_direct_setup(struct tls_conn *t)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
	if (SSL_version(t->ssl) != TLS1_3_VERSION || !c || !t->secret_len || SSL_pending(t->ssl))
		goto out;
	const EVP_CIPHER *ciph;
	const EVP_MD *md;
	size_t klen;
	switch (SSL_CIPHER_get_id(c)) {
	case 0x03001301: /* TLS_AES_128_GCM_SHA256 */
		ciph = EVP_aes_128_gcm(), md = EVP_sha256(), klen = 16;
		break;
	case 0x03001302: /* TLS_AES_256_GCM_SHA384 */
		ciph = EVP_aes_256_gcm(), md = EVP_sha384(), klen = 32;
		break;
	case 0x03001303: /* TLS_CHACHA20_POLY1305_SHA256 */
		ciph = EVP_chacha20_poly1305(), md = EVP_sha256(), klen = 32;
		break;
	default:
		goto out;
	}
	uint8_t key[32];
	if ((size_t)EVP_MD_get_size(md) != t->secret_len ||
	    hkdf_expand_label(md, t->secret, t->secret_len, "key", key, klen) ||
	    hkdf_expand_label(md, t->secret, t->secret_len, "iv", t->iv, 12))
		goto out;
	t->cctx = EVP_CIPHER_CTX_new();
	t->out = malloc(5 + TLS_RECORD + 1 + 16);
	if (t->cctx && t->out && EVP_EncryptInit_ex(t->cctx, ciph, NULL, key, NULL) == 1)
		t->direct = true;
	OPENSSL_cleanse(key, sizeof(key));
out:
	OPENSSL_cleanse(t->secret, sizeof(t->secret));
	t->secret_len = 0;
}

/* Seal one record from iov (up to 16 KiB of plaintext) into t->out. */
static int tls_seal(struct tls_conn *t, const struct iovec *iov, int n)
{
	size_t len = 0;
	for (int i = 0; i < n && len < TLS_RECORD; i++)
		len += iov[i].iov_len < TLS_RECORD - len ? iov[i].iov_len : TLS_RECORD - len;
	if (!len)
		return 0;
	uint8_t *h = t->out, nonce[12];
	size_t rl = len + 1 + 16; /* content, inner type, tag */
	h[0] = SSL3_RT_APPLICATION_DATA;
	h[1] = 3;
	h[2] = 3;
	h[3] = (uint8_t)(rl >> 8);
	h[4] = (uint8_t)rl;
	memcpy(nonce, t->iv, 12);
	for (int i = 0; i < 8; i++)
		nonce[11 - i] ^= (uint8_t)(t->seq >> (8 * i));
	int ol;
	size_t off = 5, left = len;
	uint8_t type = SSL3_RT_APPLICATION_DATA;
	if (EVP_EncryptInit_ex(t->cctx, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_EncryptUpdate(t->cctx, NULL, &ol, h, 5) != 1)
		return -1;
	for (int i = 0; i < n && left; i++) {
		size_t take = iov[i].iov_len < left ? iov[i].iov_len : left;
		/* the cipher reads the ring bytes where they are */
		if (EVP_EncryptUpdate(t->cctx, t->out + off, &ol, iov[i].iov_base, (int)take) != 1)
			return -1;
		off += (size_t)ol;
		left -= take;
	}
	if (EVP_EncryptUpdate(t->cctx, t->out + off, &ol, &type, 1) != 1)
		return -1;
	off += (size_t)ol;
	if (EVP_EncryptFinal_ex(t->cctx, t->out + off, &ol) != 1)
		return -1;
	off += (size_t)ol;
	if (EVP_CIPHER_CTX_ctrl(t->cctx, EVP_CTRL_AEAD_GET_TAG, 16, t->out + off) != 1)
		return -1;
	off += 16;
	if (off != 5 + rl)
		return -1;
	t->seq++;
	t->out_len = off;
	t->out_off = 0;
	t->out_plain = len;
	t->out_src = iov[0].iov_base;
	return 1;
}

void tls_ctx_free(struct tls_ctx *x)
{
	if (!x)
		return;
	SSL_CTX_free(x->ctx);
	free(x->url);
	free(x->verify_name);
	free(x);
}

const struct tls_counters *tls_ctx_counters(const struct tls_ctx *x)
{
	return &x->c;
}

struct tls_conn *tls_conn_new(struct tls_ctx *x, int fd)
{
	struct tls_conn *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->x = x;
	t->fd = fd;
	t->ssl = SSL_new(x->ctx);
	if (!t->ssl || !SSL_set_fd(t->ssl, fd))
		goto fail;
	if (x->verify_ip) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
		if (!X509_VERIFY_PARAM_set1_ip_asc(vp, x->verify_name))
			goto fail;
	} else {
		/* SNI (not for IP literals) and the host name check */
		if (!SSL_set_tlsext_host_name(t->ssl, x->verify_name) ||
		    !SSL_set1_host(t->ssl, x->verify_name))
			goto fail;
	}
	SSL_set_app_data(t->ssl, t);
	SSL_set_msg_callback(t->ssl, tls_msg_cb);
	SSL_set_msg_callback_arg(t->ssl, t);
	SSL_set_connect_state(t->ssl);
	return t;
fail:
	ERR_clear_error();
	tls_conn_free(t);
	return NULL;
}

void tls_conn_free(struct tls_conn *t)
{
	if (!t)
		return;
	/* No close_notify: the socket is closed by its owner right after (a
	 * server treats that as the end of the connection; nothing of ours is
	 * outstanding then). */
	SSL_free(t->ssl);
	EVP_CIPHER_CTX_free(t->cctx);
	free(t->out);
	OPENSSL_cleanse(t->iv, sizeof(t->iv));
	free(t->stage);
	free(t);
}

const char *tls_conn_error(const struct tls_conn *t)
{
	return t ? t->err : "";
}

bool tls_conn_config_error(const struct tls_conn *t)
{
	return t && t->cfg_error;
}

const char *tls_conn_mode(const struct tls_conn *t)
{
	return !t ? "userspace" : t->ktls_send ? "ktls" : t->direct ? "userspace" : "userspace-copy";
}

const char *tls_mode_note(const char *mode)
{
	if (strcmp(mode, "ktls") == 0)
		return " (the kernel encrypts: span bytes go to sendmsg as in cleartext)";
	if (strcmp(mode, "userspace") == 0)
		return " (TLS 1.3 records sealed straight from the ring iovecs: no copy of span "
		       "bytes before the cipher)";
	return " (span bytes copied into 16 KiB records for SSL_write: TLS 1.2 or a cipher "
	       "without the direct path)";
}

const char *tls_conn_desc(const struct tls_conn *t, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s", SSL_get_version(t->ssl),
		 SSL_get_current_cipher(t->ssl) ? SSL_CIPHER_get_name(SSL_get_current_cipher(t->ssl))
						: "?");
	return buf;
}

/* The text (and class) of a failed handshake or I/O call. */
/* The server certificate did not verify (vr): say why and what to set. */
static void tls_explain_verify(struct tls_conn *t, long vr)
{
	const struct tls_ctx *x = t->x;
	const char *vs = X509_verify_cert_error_string(vr);
	switch (vr) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		snprintf(t->err, sizeof(t->err),
			 "the server certificate is signed by an unknown CA (%s); give its CA "
			 "with otlp.tls_ca_file or OTEL_EXPORTER_OTLP_CERTIFICATE", vs);
		return;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		snprintf(t->err, sizeof(t->err),
			 "the server certificate does not match the host name '%s' (%s); "
			 "otlp.tls_server_name sets the name to check",
			 x->verify_name, vs);
		return;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		snprintf(t->err, sizeof(t->err), "the server certificate has expired (%s)", vs);
		return;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		snprintf(t->err, sizeof(t->err), "the server certificate is not yet valid (%s)",
			 vs);
		return;
	default:
		snprintf(t->err, sizeof(t->err), "the server certificate did not verify: %s", vs);
		return;
	}
}

/* What an alert or error reason of a failed handshake or transfer means
 * for the user; NULL: nothing more than OpenSSL's text. *cfg_error: the
 * configuration must change (retrying does not help). */
static const char *tls_reason_why(const struct tls_ctx *x, int reason, bool handshake,
				  bool *cfg_error)
{
	switch (reason) {
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		*cfg_error = true;
		return x->has_client_cert ? "the server asks for a client certificate it did not get"
					  : "the server requires a client certificate: set "
					    "otlp.tls_cert_file and otlp.tls_key_file (or "
					    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and _CLIENT_KEY)";
	case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
		if (x->has_client_cert)
			return NULL;
		*cfg_error = true;
		return "the server refused the handshake (does it require a client "
		       "certificate? set otlp.tls_cert_file and otlp.tls_key_file)";
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
		*cfg_error = true;
		return "the server refused our client certificate";
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
	case SSL_R_RECORD_LENGTH_MISMATCH:
	case SSL_R_HTTP_REQUEST:
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		if (!handshake)
			return NULL;
		return "the server did not answer with TLS: is it a cleartext server? (http:// "
		       "is cleartext, https:// is TLS)";
	case SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
		return x->h2 ? "the server does not speak HTTP/2 over TLS (ALPN h2): not a gRPC "
			       "server? (OTLP/HTTP is usually on port 4318, gRPC on 4317)"
			     : "the server does not speak HTTP/1.1 over TLS (ALPN http/1.1)";
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
	case SSL_R_UNSUPPORTED_PROTOCOL:
		return "no TLS version in common (otlp.tls_min_version)";
	default:
		return NULL;
	}
}

static void tls_explain(struct tls_conn *t, int sslerr, bool handshake)
{
	long vr = SSL_get_verify_result(t->ssl);
	unsigned long e = ERR_peek_last_error();
	int reason = e ? ERR_GET_REASON(e) : 0;
	char detail[160];
	ssl_err_text(detail, sizeof(detail));
	if (handshake && vr != X509_V_OK && reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
		t->cfg_error = true;
		tls_explain_verify(t, vr);
		return;
	}
	const char *why = tls_reason_why(t->x, reason, handshake, &t->cfg_error);
	if (!why && handshake && sslerr == SSL_ERROR_SYSCALL)
		why = "the server closed the connection during the TLS handshake: is it a "
		      "cleartext server? (http:// is cleartext, https:// is TLS)";
	if (why)
		snprintf(t->err, sizeof(t->err), "%s (%s)", why, detail);
	else
		snprintf(t->err, sizeof(t->err), "TLS: %s", detail);
}

int tls_handshake(struct tls_conn *t)
{
	ERR_clear_error();
	int r = SSL_do_handshake(t->ssl);
	if (r == 1) {
		t->x->c.handshakes++;
		if (t->x->h2) {
			const unsigned char *p;
			unsigned int n;
			SSL_get0_alpn_selected(t->ssl, &p, &n);
			if (n != 2 || memcmp(p, "h2", 2) != 0) {
				snprintf(t->err, sizeof(t->err),
					 "the server did not agree to HTTP/2 over TLS (ALPN h2): not a "
					 "gRPC server?");
				t->x->c.handshake_failures++;
				return TLS_FAILED;
			}
		}
#ifdef SSL_OP_ENABLE_KTLS
		t->ktls_send = BIO_get_ktls_send(SSL_get_wbio(t->ssl)) != 0;
#endif
		if (!t->ktls_send)
			tls_direct_setup(t);
		if (!t->ktls_send && !t->direct && !t->stage) {
			t->stage = malloc(TLS_RECORD);
			if (!t->stage) {
				snprintf(t->err, sizeof(t->err), "out of memory");
				return TLS_FAILED;
			}
		}
		return TLS_DONE;
	}
	int e = SSL_get_error(t->ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		return TLS_WANT_READ;
	if (e == SSL_ERROR_WANT_WRITE)
		return TLS_WANT_WRITE;
	tls_explain(t, e, true);
	t->x->c.handshake_failures++;
	if (t->cfg_error)
		t->x->c.config_errors++;
	return TLS_FAILED;
}

/* An SSL_read/SSL_write failure as errno. */
static ssize_t tls_io_fail(struct tls_conn *t, int r)
{
	int e = SSL_get_error(t->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e == SSL_ERROR_SYSCALL && errno && !ERR_peek_last_error()) {
		int en = errno;
		snprintf(t->err, sizeof(t->err), "%s", strerror(en));
		errno = en;
		return -1;
	}
	tls_explain(t, e, false);
	if (t->cfg_error)
		t->x->c.config_errors++;
	errno = EPROTO;
	return -1;
}

/* Userspace records sealed by the agent (tls_seal), sent by it. */
static ssize_t tls_writev_direct(struct tls_conn *t, const struct iovec *iov, int n)
{
	if (!t->out_len && t->seq >= (1ull << 24)) {
		/* RFC 8446 5.5: AES-GCM keys are good for about 2^24.5 records;
		 * a new connection (new keys) instead of a KeyUpdate */
		snprintf(t->err, sizeof(t->err), "2^24 records on one key: reconnecting");
		errno = ECONNRESET;
		return -1;
	}
	if (!t->out_len) {
		int r = tls_seal(t, iov, n);
		if (r <= 0) {
			if (r == 0)
				return 0;
			snprintf(t->err, sizeof(t->err), "TLS: sealing a record failed");
			errno = EPROTO;
			return -1;
		}
	} else if (n && iov[0].iov_base != t->out_src) {
		log_error("tls: a write was not retried with the same bytes");
		snprintf(t->err, sizeof(t->err), "internal error: write retried with other bytes");
		errno = EPROTO;
		return -1;
	}
	while (t->out_off < t->out_len) {
		ssize_t w = send(t->fd, t->out + t->out_off, t->out_len - t->out_off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				snprintf(t->err, sizeof(t->err), "%s", strerror(errno));
			return -1; /* EAGAIN: called again with the same bytes */
		}
		t->out_off += (size_t)w;
	}
	t->out_len = 0;
	t->x->c.records++;
	t->x->c.sealed_bytes += t->out_plain;
	return (ssize_t)t->out_plain;
}

/* Through OpenSSL: one plaintext copy of up to a record, SSL_write. */
static ssize_t tls_writev_ssl(struct tls_conn *t, const struct iovec *iov, int n)
{
	if (!t->pend) {
		/* Gather up to one full record: one plaintext copy of the span
		 * bytes, then SSL_write makes one record of it. */
		size_t len = 0;
		for (int i = 0; i < n && len < TLS_RECORD; i++) {
			size_t take = iov[i].iov_len;
			if (take > TLS_RECORD - len)
				take = TLS_RECORD - len;
			memcpy(t->stage + len, iov[i].iov_base, take);
			len += take;
		}
		if (!len)
			return 0;
		t->pend = len;
		t->pend_src = n ? iov[0].iov_base : NULL;
	} else if (n && iov[0].iov_base != t->pend_src) {
		/* The caller must retry with the same bytes first. */
		log_error("tls: a write was not retried with the same bytes");
		snprintf(t->err, sizeof(t->err), "internal error: write retried with other bytes");
		errno = EPROTO;
		return -1;
	}
	ERR_clear_error();
	size_t w = 0;
	int r = SSL_write_ex(t->ssl, t->stage, t->pend, &w);
	if (r != 1)
		return tls_io_fail(t, r);
	size_t done = t->pend;
	t->pend = 0;
	t->x->c.records++;
	t->x->c.copied_bytes += done;
	return (ssize_t)done;
}

ssize_t tls_writev(struct tls_conn *t, const struct iovec *iov, int n)
{
	if (t->ktls_send) {
		/* The kernel encrypts: the ring iovecs go to the socket as they are. */
		struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
		ssize_t w = sendmsg(t->fd, &m, MSG_NOSIGNAL);
		if (w > 0)
			t->x->c.ktls_bytes += (uint64_t)w;
		return w;
	}
	if (t->direct)
		return tls_writev_direct(t, iov, n);
	return tls_writev_ssl(t, iov, n);
}

ssize_t tls_read(struct tls_conn *t, void *buf, size_t n)
{
	ERR_clear_error();
	size_t got = 0;
	int r = SSL_read_ex(t->ssl, buf, n, &got);
	if (t->direct && t->key_update_seen) {
		/* Our write keys are not OpenSSL's: this connection cannot follow
		 * a KeyUpdate. Closed and retried like a reset. */
		snprintf(t->err, sizeof(t->err),
			 "the server sent a TLS KeyUpdate; reconnecting (the user-space record "
			 "path does not update its keys)");
		errno = ECONNRESET;
		return -1;
	}
	if (r == 1)
		return (ssize_t)got;
	return tls_io_fail(t, r);
}
