#include "util/procmem.h"

#include <stdio.h>
#include <unistd.h>

int
pp_procmem(uint64_t *virt, uint64_t *resident)
{
	unsigned long long pages, res;
	long page = sysconf(_SC_PAGESIZE);
	FILE *f = fopen("/proc/self/statm", "r");
	int ok;

	if (f == NULL)
		return (-1);
	ok = fscanf(f, "%llu %llu", &pages, &res) == 2 && page > 0;
	fclose(f);
	if (!ok)
		return (-1);
	*virt = (uint64_t)pages * (uint64_t)page;
	*resident = (uint64_t)res * (uint64_t)page;
	return (0);
}
