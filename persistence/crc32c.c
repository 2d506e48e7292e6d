/*
 * crc32c.c - CRC-32C with a runtime choice of implementation.
 *
 * The polynomial is Castagnoli's (reflected 0x82F63B78), which x86 CPUs
 * with SSE4.2 compute in hardware at about 8 bytes per cycle per stream.
 * The software path is slicing-by-8: eight 256-entry tables let one loop
 * step consume 8 bytes with 8 independent lookups.
 *
 * Threads: the tables are built once under pthread_once; the choice of
 * implementation is made once and stored in a function pointer with a
 * relaxed atomic (every thread computes the same value, so a race only
 * repeats work). Nothing else is shared.
 */
#include "persistence/crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#define NV_CRC32C_POLY 0x82F63B78u

static uint32_t crc_tab[8][256];
static pthread_once_t crc_tab_once = PTHREAD_ONCE_INIT;

static void
crc_tab_build(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ NV_CRC32C_POLY : c >> 1;
		crc_tab[0][n] = c;
	}
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = crc_tab[0][n];
		for (int t = 1; t < 8; t++) {
			c = crc_tab[0][c & 0xff] ^ (c >> 8);
			crc_tab[t][n] = c;
		}
	}
}

uint32_t
nv__crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&crc_tab_once, crc_tab_build);
	crc = ~crc;
	while (len > 0 && ((uintptr_t)p & 7) != 0) {
		crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		len--;
	}
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		/* Little-endian: the low byte of w is the first byte. */
		w ^= crc;
		crc = crc_tab[7][w & 0xff] ^ crc_tab[6][(w >> 8) & 0xff] ^
		      crc_tab[5][(w >> 16) & 0xff] ^
		      crc_tab[4][(w >> 24) & 0xff] ^
		      crc_tab[3][(w >> 32) & 0xff] ^
		      crc_tab[2][(w >> 40) & 0xff] ^
		      crc_tab[1][(w >> 48) & 0xff] ^ crc_tab[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t
nv__crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;

	while (len > 0 && ((uintptr_t)p & 7) != 0) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

bool
nv__crc32c_hw_available(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("sse4.2");
}
#else
uint32_t
nv__crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	return nv__crc32c_sw(crc, buf, len);
}

bool
nv__crc32c_hw_available(void)
{
	return false;
}
#endif

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);
static crc_fn crc_impl; /* atomic, relaxed: see the essay */

uint32_t
nv__crc32c_extend(uint32_t crc, const void *buf, size_t len)
{
	crc_fn f = __atomic_load_n(&crc_impl, __ATOMIC_RELAXED);
	if (f == NULL) {
		f = nv__crc32c_hw_available() ? nv__crc32c_hw : nv__crc32c_sw;
		__atomic_store_n(&crc_impl, f, __ATOMIC_RELAXED);
	}
	return f(crc, buf, len);
}

uint32_t
nv__crc32c(const void *buf, size_t len)
{
	return nv__crc32c_extend(0, buf, len);
}
