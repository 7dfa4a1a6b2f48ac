/* SPDX-License-Identifier: MIT */
/* The exporter kinds (exporter.h): the one table the core builds from. */
#include "exporter.h"

#include <string.h>

#include "config.h"

/* The unnamed instances are created in this order (the OTLP kinds last). */
const struct exp_kind exp_kinds[] = {
	{"file", AGENT_EXP_FILE, "file.", true, exp_file_kind_create},
	{"json", AGENT_EXP_JSON, "json.", true, exp_json_kind_create},
	{"console", AGENT_EXP_CONSOLE, "console.", false, exp_console_kind_create},
	{"null", AGENT_EXP_NULL, NULL, false, exp_null_kind_create},
	{"otlp", AGENT_EXP_OTLP, "otlp.", true, exp_otlp_kind_create},
	{"otlp_http", AGENT_EXP_OTLP_HTTP, "otlp.", true, exp_otlp_http_kind_create},
	{"otlp_grpc", AGENT_EXP_OTLP_GRPC, "otlp.", true, exp_otlp_grpc_kind_create},
};
const size_t exp_n_kinds = sizeof(exp_kinds) / sizeof(exp_kinds[0]);

const struct exp_kind *exp_kind_by_type(const char *type, size_t len)
{
	for (size_t i = 0; i < exp_n_kinds; i++)
		if (strlen(exp_kinds[i].type) == len && strncmp(exp_kinds[i].type, type, len) == 0)
			return &exp_kinds[i];
	return NULL;
}

const struct exp_kind *exp_kind_by_bit(uint32_t bit)
{
	for (size_t i = 0; i < exp_n_kinds; i++)
		if (exp_kinds[i].bit == bit)
			return &exp_kinds[i];
	return NULL;
}
