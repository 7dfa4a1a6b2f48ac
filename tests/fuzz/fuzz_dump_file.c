/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: spanring-dump's reader of exported files over arbitrary
 * bytes: length-delimited ExportTraceServiceRequest protobuf (the file
 * exporter) and OTLP/JSON lines (the json exporter), through
 * dump_read_file() exactly as `spanring-dump read FILE` calls it, into
 * every output form (lines, JSON, waterfall; verbose; UTF-8 bars) so the
 * printing of hostile decoded spans is fuzzed too.
 *
 * Input: opts:u8, then the file's bytes. opts bits 0-1: kind (auto,
 * protobuf, JSON), bits 2-3: format (lines, json, waterfall), bit 4:
 * verbose, bit 5: UTF-8, bit 6: UTC, bit 7: a service filter.
 * The file is a memfd read through /proc/self/fd/N (a real path, as the
 * tool gets one).
 *
 * Invariants: the exit code is OK, FILE (corrupt or truncated input) or
 * ERROR (only for out of memory: never here); spans shown <= spans seen;
 * the output is written without a crash; nothing leaks.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

#include "dump/dump.h"

static int memfd = -1;
static FILE *devnull;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	memfd = memfd_create("fuzz-dump-file", MFD_CLOEXEC);
	FZ_CHECK(memfd >= 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	devnull = fopen(getenv("FUZZ_DUMP_OUT") ? getenv("FUZZ_DUMP_OUT") : "/dev/null", "w");
	FZ_CHECK(devnull);
	/* The reader reports every corrupt record on stderr: silence that
	 * stream only (libFuzzer and the sanitizers write to fd 2 directly
	 * or through their own FILE). */
	if (!getenv("FUZZ_LOG")) {
		FILE *quiet = fopen("/dev/null", "w");
		FZ_CHECK(quiet);
		stderr = quiet;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t opts = data[0];
	FZ_CHECK(ftruncate(memfd, 0) == 0);
	FZ_CHECK(pwrite(memfd, data + 1, size - 1, 0) == (ssize_t)(size - 1));

	static const enum dump_file_kind kinds[4] = {DUMP_FILE_AUTO, DUMP_FILE_PB, DUMP_FILE_JSON,
						     DUMP_FILE_AUTO};
	static const enum dump_format fmts[4] = {DUMP_FMT_LINES, DUMP_FMT_JSON, DUMP_FMT_WATERFALL,
						 DUMP_FMT_LINES};
	struct dump_out o;
	dump_out_init(&o, devnull, fmts[(opts >> 2) & 3]);
	o.verbose = opts & 16;
	o.utf8 = opts & 32;
	o.utc = opts & 64;
	o.width = 100;
	if (opts & 128)
		o.flt.service = "svc*";
	int rc = dump_read_file(path, kinds[opts & 3], &o);
	dump_out_finish(&o);
	fflush(devnull);
	FZ_CHECK(rc == DUMP_EXIT_OK || rc == DUMP_EXIT_FILE);
	FZ_CHECK(o.shown <= o.seen);
	return 0;
}
