/* SPDX-License-Identifier: MIT */
/*
 * Bytes the OTLP exporters read and write besides the request itself:
 * the ExportTraceServiceResponse (partial success), google.rpc.Status
 * (OTLP/HTTP error bodies, gRPC grpc-status-details-bin with RetryInfo),
 * gRPC framing and header encodings, and the opt-in copying encoders
 * (gzip, gathering a request into one buffer). Decoding uses protobuf-c.
 */
#ifndef SPANRING_AGENT_OTLP_WIRE_H
#define SPANRING_AGENT_OTLP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* ExportTraceServiceResponse: *present when partial_success is set. 0 or
 * -EBADMSG. An empty body is a full success. */
int otlp_resp_decode(const uint8_t *p, size_t n, bool *present, int64_t *rejected, char *msg,
		     size_t msglen);

/*
 * google.rpc.Status: code, message, and the delay of a RetryInfo among
 * the details (*has_retry_info). 0 or -EBADMSG.
 */
int otlp_status_decode(const uint8_t *p, size_t n, int *code, char *msg, size_t msglen,
		       bool *has_retry_info, uint64_t *retry_delay_ns);

/* Percent-decode a grpc-message value into out (outlen > 0), NUL-terminated. */
void otlp_grpc_message_decode(const char *in, size_t n, char *out, size_t outlen);

/* The 5-byte gRPC message prefix. */
static inline void otlp_grpc_prefix(uint8_t out[5], bool compressed, uint32_t len)
{
	out[0] = compressed ? 1 : 0;
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
}

/* Copy the bytes of iov[0..n) into one malloc'd buffer (the copying paths:
 * JSON, gzip). NULL when out of memory. */
uint8_t *otlp_gather(const struct iovec *iov, size_t n, size_t total);

/* gzip (RFC 1952) of iov[0..n): malloc'd *out. 0 or -ENOMEM/-EIO. */
int otlp_gzip(const struct iovec *iov, size_t n, uint8_t **out, size_t *outlen);

#endif
