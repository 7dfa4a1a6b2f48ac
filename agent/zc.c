/* SPDX-License-Identifier: MIT */
/*
 * The zero-copy proof: exporters that write batches (file) pass the exact
 * iovec array they give the kernel through zc_check_iov() when
 * debug_zero_copy_check is on. The check is independent of how the batch
 * was built: ring mappings come from the registry's list of producers, not
 * from the batch, and the span bytes must add up to what the drain walk
 * counted, so a span copied into agent memory (and flagged as framing, or
 * not) fails it.
 */
#include "agent.h"
#include "log.h"

/* Does [p, p+n) lie inside the data mapping of a registered ring? */
static bool zc_in_ring(struct agent *ag, const uint8_t *p, size_t n)
{
	for (struct agent_producer *q = ag->producers; q; q = q->next) {
		if (!q->mapped)
			continue;
		const uint8_t *lo = q->map.data, *hi = q->map.data + q->map.data_span;
		if (p >= lo && p <= hi && n <= (size_t)(hi - p))
			return true;
	}
	return false;
}

/* Does [p, p+n) overlap any ring mapping (control pages included)? */
static bool zc_overlaps_ring(struct agent *ag, const uint8_t *p, size_t n)
{
	for (struct agent_producer *q = ag->producers; q; q = q->next) {
		if (!q->mapped)
			continue;
		const uint8_t *ranges[2][2] = {
			{q->map.data, q->map.data + q->map.data_span},
			{q->map.ctrl, q->map.ctrl + q->map.l.data_off},
		};
		for (int r = 0; r < 2; r++)
			if (p < ranges[r][1] && p + n > ranges[r][0])
				return true;
	}
	return false;
}

size_t zc_check_iov(struct agent *ag, const struct iovec *iov, const uint8_t *kind, size_t n,
		    uint64_t span_bytes)
{
	size_t bad = 0;
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;
		ag->st.zc_iov_checked++;
		if (kind[i] == BATCH_IOV_SPANS) {
			sum += len;
			if (!zc_in_ring(ag, p, len)) {
				bad++;
				AGENT_LOG_RL(AGENT_LOG_ERROR,
					     "zero-copy check: span iovec %zu (%p, %zu bytes) is not in "
					     "any ring mapping",
					     i, (const void *)p, len);
			}
		} else if (zc_overlaps_ring(ag, p, len)) {
			bad++;
			AGENT_LOG_RL(AGENT_LOG_ERROR,
				     "zero-copy check: framing iovec %zu (%p, %zu bytes) points into a "
				     "ring but is not flagged as span bytes",
				     i, (const void *)p, len);
		}
	}
	/* UINT64_MAX: a part of a request (a partial write's rest). */
	if (span_bytes != UINT64_MAX && sum != span_bytes) {
		bad++;
		AGENT_LOG_RL(AGENT_LOG_ERROR,
			     "zero-copy check: span iovecs hold %llu bytes, the drain walked %llu",
			     (unsigned long long)sum, (unsigned long long)span_bytes);
	}
	ag->st.zc_violations += bad;
	return bad;
}
