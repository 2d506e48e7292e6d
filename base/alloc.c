/* alloc.c - the allocation wrapper behind nv_free() and nv__* helpers. */
#include "alloc.h"

#include <stdint.h>

#include "nuvom.h"

void *
nv__aligned_alloc(size_t align, size_t size)
{
#ifndef NUVOM_NO_JEMALLOC
	return mallocx(size ? size : 1, MALLOCX_ALIGN(align) | MALLOCX_ZERO);
#else
	void *p = NULL;
	if (posix_memalign(&p, align, size ? size : 1) != 0)
		return NULL;
	memset(p, 0, size ? size : 1);
	return p;
#endif
}

void
nv__aligned_free(void *p)
{
	nv__free(p);
}

void *
nv__grow(void *p, size_t *cap, size_t n, size_t elem, size_t first)
{
	if (n < *cap)
		return p;
	size_t nc = *cap ? *cap * 2 : first;
	if (nc < *cap || (elem && nc > (size_t)-1 / elem))
		return NULL;
	void *q = nv__realloc(p, nc * elem);
	if (q != NULL)
		*cap = nc;
	return q;
}

char *
nv__strdup(const char *s)
{
	if (s == NULL)
		return NULL;
	return nv__memdup(s, strlen(s) + 1);
}

void *
nv__memdup(const void *p, size_t n)
{
	void *q = nv__malloc(n);
	if (q != NULL && n > 0)
		memcpy(q, p, n);
	return q;
}

void
nv_free(void *p)
{
	nv__free(p);
}
