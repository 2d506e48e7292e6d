/* lockfree/relax.h - the spin-wait hint shared by every busy-wait loop. */
#ifndef NV_LOCKFREE_RELAX_H
#define NV_LOCKFREE_RELAX_H

/* Tells the CPU this is a spin-wait iteration (x86 pause, arm64 yield):
 * saves power and leaves the core's resources to a sibling thread. */
static inline void
nv__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#endif
