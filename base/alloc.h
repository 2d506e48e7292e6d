/*
 * base/alloc.h - the one allocation wrapper of nuvom (internal).
 *
 * Release builds take job records and payloads from jemalloc through its
 * non-standard entry points (mallocx/sdallocx), so that jemalloc serves
 * nuvom's memory without replacing the host program's malloc and without
 * ever mixing the two heaps. Sanitizer builds (NUVOM_NO_JEMALLOC) use the
 * system allocator, which ASan/TSan must own.
 *
 * Every pointer that nuvom hands to a user through void ** / char ** comes
 * from nv__malloc and goes back through nv_free().
 */
#ifndef NV_BASE_ALLOC_H
#define NV_BASE_ALLOC_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#ifndef NUVOM_NO_JEMALLOC
#include <jemalloc/jemalloc.h>
static inline void *
nv__malloc(size_t n)
{
	return mallocx(n ? n : 1, 0);
}
static inline void *
nv__calloc(size_t n, size_t s)
{
	if (s && n > (size_t)-1 / s)
		return NULL;
	return mallocx(n * s != 0 ? n * s : 1, MALLOCX_ZERO);
}
#define nv__free(p)                                                            \
	do {                                                                   \
		void *nv__p_ = (p);                                            \
		if (nv__p_)                                                    \
			dallocx(nv__p_, 0);                                    \
	} while (0)
static inline void *
nv__realloc_(void *p, size_t n)
{
	if (n == 0)
		n = 1;
	return p ? rallocx(p, n, 0) : mallocx(n, 0);
}
#define nv__realloc(p, n) nv__realloc_((p), (n))
#else
static inline void *
nv__malloc(size_t n)
{
	return malloc(n ? n : 1);
}
static inline void *
nv__calloc(size_t n, size_t s)
{
	return calloc(n ? n : 1, s ? s : 1);
}
#define nv__free(p) free(p)
static inline void *
nv__realloc(void *p, size_t n)
{
	return realloc(p, n ? n : 1);
}
#endif

/* Aligned allocation (alignment a power of two, e.g. a cache line). */
void *nv__aligned_alloc(size_t align, size_t size);
void nv__aligned_free(void *p);

/* Room for one more element in array p of *cap elements of elem bytes
 * holding n: p itself while n < *cap, else p grown by nv__realloc to
 * twice its capacity (first: the capacity of an empty array), *cap
 * updated. NULL when out of memory; then p and *cap are unchanged. Use:
 *   T *q = nv__grow(a->v, &a->cap, a->n, sizeof(*q), 16);
 *   if (q == NULL) return NV_ENOMEM;
 *   a->v = q;                                                          */
void *nv__grow(void *p, size_t *cap, size_t n, size_t elem, size_t first);

/* Copies of strings/bytes in the nuvom heap; NULL on ENOMEM. */
char *nv__strdup(const char *s);
void *nv__memdup(const void *p, size_t n);

#endif /* NV_BASE_ALLOC_H */
