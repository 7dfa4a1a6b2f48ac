/* SPDX-License-Identifier: MIT */
/* OTLP exporter wire helpers (otlp_wire.h). */
#include "pbcheck.h"
#include "otlp_wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "hex.h"
#include "otlp_trace_service.pb-c.h"
#include "rpc_status.pb-c.h"

static void copy_str(char *out, size_t outlen, const char *s)
{
	if (!outlen)
		return;
	snprintf(out, outlen, "%s", s ? s : "");
	/* log-safe: no control characters */
	for (char *q = out; *q; q++)
		if ((unsigned char)*q < ' ' || *q == 0x7f)
			*q = '?';
}

int otlp_resp_decode(const uint8_t *p, size_t n, bool *present, int64_t *rejected, char *msg,
		     size_t msglen)
{
	*present = false;
	*rejected = 0;
	if (msglen)
		msg[0] = 0;
	if (n == 0)
		return 0;
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *r =
		(void *)sr_pb_unpack(&opentelemetry__proto__collector__trace__v1__export_trace_service_response__descriptor, p, n);
	if (!r)
		return -EBADMSG;
	if (r->partial_success) {
		*present = true;
		*rejected = r->partial_success->rejected_spans;
		copy_str(msg, msglen, r->partial_success->error_message);
	}
	opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(
		r, NULL);
	return 0;
}

int otlp_status_decode(const uint8_t *p, size_t n, int *code, char *msg, size_t msglen,
		       bool *has_retry_info, uint64_t *retry_delay_ns)
{
	*code = 0;
	*has_retry_info = false;
	*retry_delay_ns = 0;
	if (msglen)
		msg[0] = 0;
	Google__Rpc__Status *st = (void *)sr_pb_unpack(&google__rpc__status__descriptor, p, n);
	if (!st)
		return -EBADMSG;
	*code = st->code;
	copy_str(msg, msglen, st->message);
	static const char suffix[] = "/google.rpc.RetryInfo";
	for (size_t i = 0; i < st->n_details; i++) {
		const Google__Rpc__Any *a = st->details[i];
		size_t tl = a->type_url ? strlen(a->type_url) : 0;
		if (tl < sizeof(suffix) - 1 ||
		    strcmp(a->type_url + tl - (sizeof(suffix) - 1), suffix) != 0)
			continue;
		Google__Rpc__RetryInfo *ri =
			(void *)sr_pb_unpack(&google__rpc__retry_info__descriptor, a->value.data, a->value.len);
		if (!ri)
			continue;
		*has_retry_info = true;
		if (ri->retry_delay && ri->retry_delay->seconds >= 0 && ri->retry_delay->nanos >= 0) {
			int64_t s = ri->retry_delay->seconds;
			if (s > 100000000)
				s = 100000000;
			*retry_delay_ns = (uint64_t)s * 1000000000ull + (uint64_t)ri->retry_delay->nanos;
		}
		google__rpc__retry_info__free_unpacked(ri, NULL);
		break;
	}
	google__rpc__status__free_unpacked(st, NULL);
	return 0;
}

void otlp_grpc_message_decode(const char *in, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < outlen; i++) {
		int c = (unsigned char)in[i];
		if (c == '%' && i + 2 < n && sr_hexval(in[i + 1]) >= 0 && sr_hexval(in[i + 2]) >= 0) {
			c = sr_hexval(in[i + 1]) * 16 + sr_hexval(in[i + 2]);
			i += 2;
		}
		out[o++] = (c < ' ' || c == 0x7f) ? '?' : (char)c;
	}
	out[o] = 0;
}

uint8_t *otlp_gather(const struct iovec *iov, size_t n, size_t total)
{
	uint8_t *buf = malloc(total ? total : 1);
	if (!buf)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(buf + o, iov[i].iov_base, iov[i].iov_len);
		o += iov[i].iov_len;
	}
	return buf;
}

int otlp_gzip(const struct iovec *iov, size_t n, uint8_t **out, size_t *outlen)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	/* 15 + 16: a gzip wrapper; level 1: the agent is not the place to spend CPU */
	if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += iov[i].iov_len;
	size_t cap = deflateBound(&z, (uLong)total) + 64;
	uint8_t *buf = malloc(cap);
	if (!buf) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_out = buf;
	z.avail_out = (uInt)cap;
	int rc = Z_OK;
	for (size_t i = 0; i < n && rc == Z_OK; i++) {
		z.next_in = (Bytef *)iov[i].iov_base;
		z.avail_in = (uInt)iov[i].iov_len;
		rc = deflate(&z, Z_NO_FLUSH);
	}
	if (rc == Z_OK)
		rc = deflate(&z, Z_FINISH);
	size_t len = cap - z.avail_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	*outlen = len;
	return 0;
}
