/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: spanring-dump's reader of live rings (tools/dump/ring.c)
 * over arbitrary ring memory. spanring-dump is run by administrators,
 * often as root, on rings that other (untrusted) users' processes write:
 * its header validation, slot snapshots, record walk, scope table, span
 * decoding and printing must hold against any bytes, also bytes that
 * change between two reads.
 *
 * Input: the ring program of fuzz_ring.c (same op encoding, so its seeds
 * apply), run against a real sealed memfd ring (1 or 2 slots of 16 KiB),
 * with the agent-side ops replaced:
 *   4 SHOW     dump_ring_from_fd (once, read-only fd) + dump_ring_show
 *   5 FOLLOW   dump_ring_follow_poll (after follow_start at the first one)
 *   6 TAIL     slot:u8 delta:u16: the "agent" releases: tail += delta
 *   7 REOPEN   close the ring reader; the next SHOW opens it again
 * The first byte: bit 0 two slots, bits 1-2 where follow starts (head,
 * tail, start), bits 3-4 the output form, bit 5 verbose.
 *
 * Invariants: open fails only with the documented exit codes; show and
 * follow return OK or CORRUPT (never crash, never read outside the
 * mapping: ASan, and the reader copies before it decodes); a corrupt
 * ring stays dead for follow; nothing leaks, no fd is left open.
 */
#include <fcntl.h>
#include <unistd.h>

#include "fuzz.h"

#include "dump/dump.h"
#include "testring.h"

#define SLOT_SIZE 16384u

static FILE *devnull;
static int base_fds;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	devnull = fopen("/dev/null", "w");
	FZ_CHECK(devnull);
	if (!getenv("FUZZ_LOG")) {
		FILE *quiet = fopen("/dev/null", "w");
		FZ_CHECK(quiet);
		stderr = quiet; /* the reader's notes; fd 2 stays for reports */
	}
	base_fds = fz_count_fds();
	return 0;
}

static uint8_t *region(struct tr *t, uint32_t r, size_t *size)
{
	const struct sr_layout *l = &t->m.l;
	switch (r) {
	case 0: *size = SPANRING_PAGE; return t->m.ctrl;
	case 1: *size = l->cons_off - l->prod_off; return t->m.ctrl + l->prod_off;
	case 2: *size = l->scope_off - l->cons_off; return t->m.ctrl + l->cons_off;
	case 3: *size = l->scope_cap; return t->m.ctrl + l->scope_off;
	case 4: *size = l->res_cap; return t->m.ctrl + l->res_off;
	default:
		*size = l->slot_size;
		return sr_slot_data(&t->m, (r - 5) % l->slot_count);
	}
}

static bool open_rc_ok(int rc)
{
	return rc == DUMP_EXIT_OK || rc == DUMP_EXIT_CORRUPT || rc == DUMP_EXIT_ABI;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = {data, size};
	uint8_t conf = fz_u8(&in);
	uint32_t slots = (conf & 1) ? 2 : 1;
	static const enum dump_follow_from froms[4] = {DUMP_FOLLOW_HEAD, DUMP_FOLLOW_TAIL,
						       DUMP_FOLLOW_START, DUMP_FOLLOW_TAIL};
	static const enum dump_format fmts[4] = {DUMP_FMT_LINES, DUMP_FMT_JSON, DUMP_FMT_WATERFALL,
						 DUMP_FMT_LINES};
	static struct tr t;
	uint8_t res[256];
	size_t rl = tr_encode_resource(res, "fuzz-dump", false);
	FZ_CHECK(tr_create_ex(&t, slots, SLOT_SIZE, SPANRING_PAGE, res, rl) == 0);
	uint64_t scope0 = tr_add_scope(&t, "fuzz-scope", "1.0", NULL);
	struct dump_out o;
	dump_out_init(&o, devnull, fmts[(conf >> 3) & 3]);
	o.verbose = conf & 32;
	o.width = 100;
	struct dump_ring *r = NULL;
	bool following = false, dead = false, failed = false;
	uint64_t tail[2] = {0, 0};

	while (fz_left(&in) && !failed) {
		uint8_t op = fz_u8(&in) % 10;
		switch (op) {
		case 0: {
			uint32_t rg = fz_u8(&in) % (5 + slots);
			uint16_t off = fz_u16(&in);
			size_t want = fz_u8(&in), got, rsize;
			const uint8_t *b = fz_bytes(&in, want, &got);
			uint8_t *base = region(&t, rg, &rsize);
			size_t ofs = off % rsize;
			if (got > rsize - ofs)
				got = rsize - ofs;
			memcpy(base + ofs, b, got);
			break;
		}
		case 1: {
			uint32_t s = fz_u8(&in) % slots;
			size_t want = fz_u16(&in) % (SLOT_SIZE + 1), got;
			const uint8_t *b = fz_bytes(&in, want, &got);
			tr_put_raw(&t, s, b, got);
			t.pending[s] %= SLOT_SIZE + 1;
			break;
		}
		case 2:
			tr_commit(&t, fz_u8(&in) % slots);
			break;
		case 3: {
			uint32_t s = fz_u8(&in) % slots;
			int32_t d = (int32_t)fz_u32(&in);
			tr_set_head(&t, s, t.head[s] + (uint64_t)(int64_t)d);
			break;
		}
		case 4:
		case 5:
			if (!r) {
				char p[64], err[512];
				snprintf(p, sizeof(p), "/proc/self/fd/%d", t.m.fd);
				int fd = open(p, O_RDONLY | O_CLOEXEC);
				FZ_CHECK(fd >= 0);
				int rc = dump_ring_from_fd(fd, getpid(), &r, err, sizeof(err));
				FZ_CHECK(open_rc_ok(rc));
				if (rc != DUMP_EXIT_OK) {
					FZ_CHECK(err[0] && memchr(err, 0, sizeof(err)));
					r = NULL;
					failed = true;
					break;
				}
				following = dead = false;
			}
			if (op == 4) {
				int rc = dump_ring_show(r, &o, true);
				FZ_CHECK(rc == DUMP_EXIT_OK || rc == DUMP_EXIT_CORRUPT);
			} else {
				if (!following) {
					dump_ring_follow_start(r, froms[(conf >> 1) & 3]);
					following = true;
				}
				int rc = dump_ring_follow_poll(r, &o);
				FZ_CHECK(rc == DUMP_EXIT_OK || rc == DUMP_EXIT_CORRUPT);
				if (dead)
					FZ_CHECK(dump_ring_dead(r));
				dead = dump_ring_dead(r);
			}
			break;
		case 6: {
			uint32_t s = fz_u8(&in) % slots;
			tail[s] += fz_u16(&in);
			sr_store_release_64(&sr_cons(&t.m, s)->tail, tail[s]);
			break;
		}
		case 7:
			dump_ring_close(r);
			r = NULL;
			break;
		case 8: {
			uint32_t s = fz_u8(&in) % slots;
			size_t want = fz_u8(&in), got;
			const uint8_t *b = fz_bytes(&in, want, &got);
			uint8_t hdr[8];
			uint8_t *e = pb_put_tag1(hdr, SPANRING_SPAN_FIELD, SPANRING_WT_LEN);
			e = pb_put_varint(e, got);
			tr_put_raw(&t, s, hdr, (size_t)(e - hdr));
			tr_put_raw(&t, s, b, got);
			t.pending[s] %= SLOT_SIZE + 1;
			break;
		}
		case 9: {
			uint32_t s = fz_u8(&in) % slots;
			uint8_t kind = fz_u8(&in) % 4;
			uint32_t v = fz_u32(&in);
			uint8_t rec[32];
			size_t n;
			if (kind == 0)
				n = tr_ctrl_varint(rec, SPANRING_CTRL_SCOPE, scope0 + (v % 64) * 8);
			else if (kind == 1)
				n = tr_ctrl_varint(rec, SPANRING_CTRL_LOST, v);
			else if (kind == 2)
				n = tr_ctrl_varint(rec, SPANRING_CTRL_SCOPE, v);
			else {
				uint8_t *e = pb_put_varint(rec, PB_TAG(SPANRING_CTRL_PAD, SPANRING_WT_LEN));
				uint32_t pad = v % 8;
				e = pb_put_varint(e, pad);
				memset(e, 0, pad);
				n = (size_t)(e - rec) + pad;
			}
			tr_put_raw(&t, s, rec, n);
			break;
		}
		}
	}
	dump_ring_close(r);
	dump_out_finish(&o);
	fflush(devnull);
	sr_ring_unmap(&t.m, true);
	FZ_CHECK_FDS(base_fds);
	return 0;
}
