/* SPDX-License-Identifier: MIT */
/*
 * TLS of the OTLP exporters (OpenSSL 3): one context per exporter, one
 * connection per socket, on the agent's non-blocking event loop.
 *
 * Verification is on by default (the system CA store or otlp.tls_ca_file,
 * SNI and a host name or IP check against the endpoint's host or
 * otlp.tls_server_name); a client certificate and key for mTLS; a minimum
 * version (TLS 1.2 by default); ALPN h2 for gRPC (required) and http/1.1
 * for OTLP/HTTP.
 *
 * Sending (docs/EXPORTERS.md, "Zero copy and TLS"): when OpenSSL turned on
 * kernel TLS for sending after the handshake (SSL_OP_ENABLE_KTLS, the
 * kernel's tls ULP), tls_writev() hands the ring iovecs to sendmsg(2)
 * exactly as in cleartext and the kernel encrypts ("ktls"). Otherwise,
 * over TLS 1.3, records of 16 KiB are sealed here with EVP AEAD reading
 * the iovecs where they are, the ciphertext being the only new bytes
 * ("userspace"); TLS 1.2 gathers 16 KiB records for SSL_write
 * ("userspace-copy").
 */
#ifndef SPANRING_AGENT_TLS_H
#define SPANRING_AGENT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct otlp_conf;
struct tls_ctx;
struct tls_conn;

/* A context for exporter `name` from conf (conf->tls must be set). Logs
 * the insecure-skip-verify warning. 0 or -errno with err set. */
int tls_ctx_new(const struct otlp_conf *conf, bool h2, const char *name, struct tls_ctx **out,
		char *err, size_t errlen);
void tls_ctx_free(struct tls_ctx *x);

/* A client connection on connected socket fd (not owned). NULL: no memory. */
struct tls_conn *tls_conn_new(struct tls_ctx *x, int fd);
void tls_conn_free(struct tls_conn *t);

enum {
	TLS_DONE = 0,
	TLS_WANT_READ = 1,
	TLS_WANT_WRITE = 2,
	TLS_FAILED = -1,
};
/* One step of the handshake (call again on the wanted event). On TLS_DONE
 * the mode is known (tls_conn_mode). TLS_FAILED: tls_conn_error(). */
int tls_handshake(struct tls_conn *t);

/* Like writev(2) (non-blocking: -1 with errno EAGAIN; other failures
 * errno EPIPE/EPROTO with tls_conn_error set). After EAGAIN call again
 * with the same bytes first (the callers keep a cursor). */
ssize_t tls_writev(struct tls_conn *t, const struct iovec *iov, int n);
/* Like recv(2): bytes, 0 at the end (close_notify or EOF), -1 with errno. */
ssize_t tls_read(struct tls_conn *t, void *buf, size_t n);

/* The last failure, for a log line ("" when none). */
const char *tls_conn_error(const struct tls_conn *t);
/* Was it a configuration error: a certificate that did not verify (ours
 * of the server's, or the server's of ours), or no client certificate
 * where the server requires one? Those are not retried like an
 * unavailable backend. */
bool tls_conn_config_error(const struct tls_conn *t);
/* "ktls" (the kernel encrypts what we send), "userspace" (TLS 1.3 records
 * sealed here straight from the iovecs) or "userspace-copy" (SSL_write of
 * gathered 16 KiB records: TLS 1.2, other ciphers). */
const char *tls_conn_mode(const struct tls_conn *t);
/* What the mode means for the span bytes, for the log line. */
const char *tls_mode_note(const char *mode);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" for the log. */
const char *tls_conn_desc(const struct tls_conn *t, char *buf, size_t len);

/* Plaintext bytes copied into record buffers (userspace mode), records. */
struct tls_counters {
	uint64_t handshakes, handshake_failures, config_errors;
	uint64_t records, copied_bytes, ktls_bytes;
	uint64_t sealed_bytes; /* plaintext sealed from the iovecs (no copy) */
};
const struct tls_counters *tls_ctx_counters(const struct tls_ctx *x);

#endif
