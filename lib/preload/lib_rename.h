/* SPDX-License-Identifier: MIT */
/*
 * Included first (-include) when the lib/ sources are compiled for the LD_PRELOAD
 * shim: the library's definitions of these API functions take internal
 * names, and the shim defines the public names itself (pl_api.c) to give
 * spans without a current span the process span as their parent. The
 * library's own calls between these functions follow the rename, so the
 * library behaves exactly as in libspanring. The names are local to the
 * shim (preload.map).
 */
#ifndef SPANRING_PRELOAD_LIB_RENAME_H
#define SPANRING_PRELOAD_LIB_RENAME_H
/* The library is being built into the shim. */
#define SR_IN_PRELOAD 1
#define spanring_span_start sr_lib_span_start
#define spanring_span_start_ref sr_lib_span_start_ref
#define spanring_span_start_ex sr_lib_span_start_ex
#define spanring_span_emit sr_lib_span_emit
#define spanring_span_end sr_lib_span_end
#define spanring_span_end_at sr_lib_span_end_at
#define spanring_current_context sr_lib_current_context
#define spanring_shutdown sr_lib_shutdown
#endif
