/*
 * persistence/crc32c.h - CRC-32C (Castagnoli), the checksum of every
 * on-disk record and segment header of the file store.
 *
 * Two implementations compute the same function: the SSE4.2 crc32
 * instruction (chosen once, at the first call, when the CPU has it) and a
 * portable slicing-by-8 table. Both are exported so that tests can check
 * each against known vectors. All functions are thread-safe and pure.
 */
#ifndef NV_PERSIST_CRC32C_H
#define NV_PERSIST_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CRC-32C of buf[0..len) (initial value ~0, final xor ~0, as in RFC 3720):
 * nv__crc32c("123456789", 9) == 0xE3069283. */
uint32_t nv__crc32c(const void *buf, size_t len);

/* Continues a CRC: nv__crc32c_extend(nv__crc32c(a), b) == crc of a||b. */
uint32_t nv__crc32c_extend(uint32_t crc, const void *buf, size_t len);

/* The two implementations behind nv__crc32c_extend. The hardware one must
 * only be called when nv__crc32c_hw_available() is true. */
uint32_t nv__crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t nv__crc32c_hw(uint32_t crc, const void *buf, size_t len);
bool nv__crc32c_hw_available(void);

#endif
