/*
 * fuzz_record.c - libFuzzer target for the file store's record decoder
 * and for recovery of an arbitrary segment image.
 *
 * 1. The input is decoded as a stream of records; each record that
 *    decodes must re-encode to exactly the same bytes (one encoding per
 *    record), and the header decoder runs on it too.
 * 2. The input becomes segment files in a temporary directory (the first
 *    byte picks the layout: the raw bytes as the only segment; a valid
 *    header followed by the bytes; the bytes split over two segments with
 *    valid headers; or the bytes as an older segment followed by a clean
 *    one). The store must open (or refuse a newer format with
 *    NV_ECORRUPT), replay in strictly increasing seq order, and a second
 *    open must find nothing left to repair and replay the same records.
 *
 * Any violation aborts (a crash for the fuzzer).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "persistence/codec.h"
#include "persistence/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "fuzz_record: %s failed (line %d)\n",  \
				#c, __LINE__);                                 \
			abort();                                               \
		}                                                              \
	} while (0)

static char dir[256];

static void
decode_stream(const uint8_t *data, size_t size)
{
	size_t off = 0;
	nv_seg_hdr h;

	(void)nv__seg_hdr_decode(data, size, &h);
	while (off < size) {
		nv_rec r;
		size_t used, n;
		uint8_t *buf;
		if (nv__rec_decode(data + off, size - off, &r, &used) !=
		    NV__DEC_OK)
			break;
		CHECK(used <= size - off && used == nv__rec_size(&r));
		buf = malloc(used);
		n = nv__rec_encode(&r, buf);
		CHECK(n == used && memcmp(buf, data + off, n) == 0);
		free(buf);
		off += used;
	}
}

static void
put_file(uint64_t segno, const uint8_t *hdr, const uint8_t *b, size_t n)
{
	char path[512];
	FILE *f;
	snprintf(path, sizeof(path), "%s/seg-%016llx.log", dir,
		 (unsigned long long)segno);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	if (hdr)
		CHECK(fwrite(hdr, 1, NV__SEG_HDR_LEN, f) == NV__SEG_HDR_LEN);
	if (n)
		CHECK(fwrite(b, 1, n, f) == n);
	fclose(f);
}

static void
clean_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[600];
	CHECK(d != NULL);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

struct seen {
	uint64_t last, n;
};

static int
seen_cb(const nv_rec *r, void *arg)
{
	struct seen *s = arg;
	CHECK(r->seq > s->last);
	CHECK(r->type >= 1 && r->type <= NV_REC_TYPE_MAX);
	s->last = r->seq;
	s->n++;
	return 0;
}

static void
recover_image(const uint8_t *data, size_t size)
{
	uint8_t h1[NV__SEG_HDR_LEN], h2[NV__SEG_HDR_LEN];
	nv_seg_hdr h = {.segno = 1};
	nv_store_conf conf = {
	    .path = dir, .fsync = NV_FSYNC_OFF, .segment_bytes = 4096};
	struct seen a = {0}, b = {0};
	nv_store *s;
	nv_store_stats st;
	int rc;

	if (size == 0)
		return;
	nv__seg_hdr_encode(&h, h1);
	h.segno = 2;
	nv__seg_hdr_encode(&h, h2);
	switch (data[0] & 3) {
	case 0:
		put_file(1, NULL, data + 1, size - 1);
		break;
	case 1:
		put_file(1, h1, data + 1, size - 1);
		break;
	case 2:
		put_file(1, h1, data + 1, (size - 1) / 2);
		put_file(2, h2, data + 1 + (size - 1) / 2,
			 size - 1 - (size - 1) / 2);
		break;
	default:
		put_file(1, h1, data + 1, size - 1);
		put_file(2, h2, NULL, 0);
		break;
	}
	rc = nv__file_store_ops.open(&s, &conf);
	if (rc != 0) {
		CHECK(rc == NV_ECORRUPT); /* only a newer format refuses */
		clean_dir();
		return;
	}
	CHECK(s->ops->replay(s, seen_cb, &a) == 0);
	s->ops->close(s);
	CHECK(nv__file_store_ops.open(&s, &conf) == 0);
	s->ops->stats(s, &st);
	CHECK(st.truncated_bytes == 0 && st.quarantined == 0);
	CHECK(s->ops->replay(s, seen_cb, &b) == 0);
	CHECK(a.n == b.n && a.last == b.last);
	s->ops->close(s);
	clean_dir();
}

static void
remove_dir(void)
{
	clean_dir();
	rmdir(dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (dir[0] == '\0') {
		const char *t = getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/nvfuzz-record-XXXXXX",
			 t && *t ? t : "/tmp");
		CHECK(mkdtemp(dir) != NULL);
		atexit(remove_dir);
		nv__log_set_level(getenv("FZLOG") ? 3 : -1);
	}
	decode_stream(data, size);
	recover_image(data, size);
	return 0;
}
