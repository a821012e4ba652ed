#ifndef PP_PROCMEM_H
#define PP_PROCMEM_H

/*
 * This process's memory as the kernel counts it (/proc/self/statm): read
 * by the metrics and by the memory trim's log line.
 */

#include <stdint.h>

/* pp_procmem(virt, resident): the virtual and resident sizes in bytes.
 * Return 0, or -1 (both left unchanged) if they cannot be read. */
int pp_procmem(uint64_t *virt, uint64_t *resident);

#endif
