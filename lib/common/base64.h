/* SPDX-License-Identifier: MIT */
/*
 * Base64 (RFC 4648): the one encoder and decoder of the tree. OTLP/JSON
 * writes bytes fields with it, spanring-dump reads them back, and gRPC's
 * "-bin" headers (grpc-status-details-bin) arrive in it, unpadded.
 */
#ifndef SPANRING_COMMON_BASE64_H
#define SPANRING_COMMON_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters sr_base64_encode() writes for n bytes. */
#define SR_BASE64_LEN(n) (((n) + 2) / 3 * 4)

/* Write the standard base64 of in[0..n), with padding, to out:
 * SR_BASE64_LEN(n) characters, no NUL. */
void sr_base64_encode(const uint8_t *in, size_t n, char *out);

/*
 * Decode n characters of base64 into out, which must hold n / 4 * 3 + 2
 * bytes; *outlen is the number written. Both the standard and the URL-safe
 * alphabet are accepted, padding is optional ('=' only at the end). 0, or
 * -EINVAL for any other character or a length no encoding has (4k + 1).
 */
int sr_base64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen);

#endif
