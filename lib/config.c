/* SPDX-License-Identifier: MIT */
/*
 * Producer configuration from the environment, and the samplers.
 *
 * OpenTelemetry variables (SDK environment-variable specification):
 *   OTEL_SDK_DISABLED            "true" (any case) disables tracing
 *   OTEL_TRACES_SAMPLER          always_on, always_off, traceidratio,
 *                                parentbased_always_on (default),
 *                                parentbased_always_off, parentbased_traceidratio
 *   OTEL_TRACES_SAMPLER_ARG      ratio in [0, 1] (default 1.0)
 *   OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT / OTEL_ATTRIBUTE_COUNT_LIMIT (128)
 *   OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT / OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT (none)
 *   OTEL_SPAN_EVENT_COUNT_LIMIT, OTEL_SPAN_LINK_COUNT_LIMIT (128)
 *   OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT, OTEL_LINK_ATTRIBUTE_COUNT_LIMIT (128)
 * spanring variables:
 *   SPANRING_SLOTS               slots per ring, 1..64 (default 8)
 *   SPANRING_SLOT_SIZE           bytes per slot, power of two, K/M suffix
 *                                accepted, 16K..64M (default 512K)
 * An invalid value is ignored (the default applies), as the specification
 * asks of SDKs; SPANRING_DEBUG=1 reports it on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

#include "internal.h"

/* Ring defaults when SPANRING_SLOTS / SPANRING_SLOT_SIZE are unset (the
 * LD_PRELOAD shim lowers them: short-lived processes map less). */
static uint32_t def_slots = 8, def_slot_size = 512u << 10;

void sr_config_set_ring_defaults(uint32_t slots, uint32_t slot_size)
{
	if (slots >= 1 && slots <= SPANRING_MAX_SLOTS)
		def_slots = slots;
	if (slot_size >= SPANRING_MIN_SLOT_SIZE && slot_size <= SPANRING_MAX_SLOT_SIZE &&
	    !(slot_size & (slot_size - 1)))
		def_slot_size = slot_size;
}

static void warn_invalid(const char *var, const char *val)
{
	const char *dbg = secure_getenv("SPANRING_DEBUG");
	if (!dbg || !*dbg || strcmp(dbg, "0") == 0)
		return;
	/* write(), not stdio: this may run in a restricted fork child
	 * (docs/DESIGN-NOTES.md, "Fork"). */
	const char *part[] = {"spanring: ignoring invalid ", var, "=\"", val, "\"\n"};
	for (size_t i = 0; i < sizeof(part) / sizeof(part[0]); i++) {
		ssize_t r = write(2, part[i], strlen(part[i]));
		(void)r;
	}
}

/* Parse an unsigned decimal with optional K/M/G suffix; -1 if invalid. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (end[-1] > '9' && *end == 'i') /* "Ki", "Mi", "Gi" */
		end++;
	if (end[-1] > '9' && *end == 'B') /* "KB", "KiB" */
		end++;
	if (*end)
		return -1;
	*out = v;
	return 0;
}

static uint32_t env_u32(const char *primary, const char *fallback, uint32_t def)
{
	const char *names[2] = {primary, fallback};
	for (int i = 0; i < 2; i++) {
		if (!names[i])
			continue;
		const char *v = getenv(names[i]);
		if (!v || !*v)
			continue;
		uint64_t x;
		if (parse_size(v, &x) || x > UINT32_MAX) {
			warn_invalid(names[i], v);
			continue;
		}
		return (uint32_t)x;
	}
	return def;
}

void sr_config_from_env(struct sr_config *c)
{
	memset(c, 0, sizeof(*c));
	const char *v = secure_getenv("OTEL_SDK_DISABLED");
	c->disabled = v && strcasecmp(v, "true") == 0;

	c->sampler = SR_SAMPLE_PB_ALWAYS_ON;
	c->ratio = 1.0;
	v = secure_getenv("OTEL_TRACES_SAMPLER");
	if (v && *v) {
		static const struct {
			const char *name;
			enum sr_sampler s;
		} names[] = {
			{"always_on", SR_SAMPLE_ALWAYS_ON},
			{"always_off", SR_SAMPLE_ALWAYS_OFF},
			{"traceidratio", SR_SAMPLE_RATIO},
			{"parentbased_always_on", SR_SAMPLE_PB_ALWAYS_ON},
			{"parentbased_always_off", SR_SAMPLE_PB_ALWAYS_OFF},
			{"parentbased_traceidratio", SR_SAMPLE_PB_RATIO},
		};
		size_t i;
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcasecmp(v, names[i].name) == 0)
				break;
		if (i < sizeof(names) / sizeof(names[0]))
			c->sampler = names[i].s;
		else
			warn_invalid("OTEL_TRACES_SAMPLER", v);
	}
	v = secure_getenv("OTEL_TRACES_SAMPLER_ARG");
	if (v && *v && (c->sampler == SR_SAMPLE_RATIO || c->sampler == SR_SAMPLE_PB_RATIO)) {
		char *end;
		double r = strtod(v, &end);
		if (end != v && !*end && r >= 0.0 && r <= 1.0)
			c->ratio = r;
		else
			warn_invalid("OTEL_TRACES_SAMPLER_ARG", v);
	}
	/* Sample when the trace id's 56 rightmost bits fall below ratio * 2^56
	 * (those bits are random per W3C Trace Context Level 2). */
	c->ratio_bound = c->ratio >= 1.0 ? (1ull << 56) : (uint64_t)(c->ratio * (double)(1ull << 56));

	c->attr_count_limit = env_u32("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT", 128);
	c->attr_value_limit = env_u32("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
				      "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", UINT32_MAX);
	c->event_count_limit = env_u32("OTEL_SPAN_EVENT_COUNT_LIMIT", NULL, 128);
	c->link_count_limit = env_u32("OTEL_SPAN_LINK_COUNT_LIMIT", NULL, 128);
	c->event_attr_limit = env_u32("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", NULL, 128);
	c->link_attr_limit = env_u32("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", NULL, 128);

	c->slot_count = env_u32("SPANRING_SLOTS", NULL, def_slots);
	if (c->slot_count < 1 || c->slot_count > SPANRING_MAX_SLOTS) {
		warn_invalid("SPANRING_SLOTS", secure_getenv("SPANRING_SLOTS"));
		c->slot_count = def_slots;
	}
	c->slot_size = env_u32("SPANRING_SLOT_SIZE", NULL, def_slot_size);
	if (c->slot_size < SPANRING_MIN_SLOT_SIZE || c->slot_size > SPANRING_MAX_SLOT_SIZE ||
	    (c->slot_size & (c->slot_size - 1))) {
		warn_invalid("SPANRING_SLOT_SIZE", secure_getenv("SPANRING_SLOT_SIZE"));
		c->slot_size = def_slot_size;
	}
}

static inline bool ratio_sample(const struct sr_config *c, const uint8_t tid[16])
{
	uint64_t r = 0;
	for (int i = 9; i < 16; i++)
		r = (r << 8) | tid[i];
	return r < c->ratio_bound;
}

bool sr_sample(const struct sr_config *c, const uint8_t trace_id[16], bool has_parent,
	       bool parent_sampled, bool parent_remote)
{
	(void)parent_remote; /* remote and local parents use the same delegate by default */
	switch (c->sampler) {
	case SR_SAMPLE_ALWAYS_ON:
		return true;
	case SR_SAMPLE_ALWAYS_OFF:
		return false;
	case SR_SAMPLE_RATIO:
		return ratio_sample(c, trace_id);
	case SR_SAMPLE_PB_ALWAYS_ON:
		return has_parent ? parent_sampled : true;
	case SR_SAMPLE_PB_ALWAYS_OFF:
		return has_parent ? parent_sampled : false;
	case SR_SAMPLE_PB_RATIO:
		return has_parent ? parent_sampled : ratio_sample(c, trace_id);
	}
	return true;
}
