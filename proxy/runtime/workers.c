#include "runtime/workers.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

int
pp_workers_swap(struct pp_worker *w, int n, struct pp_config *next,
                const int *fds)
{
	size_t nt = next->ntunnels;
	struct pp_swap **swaps;
	int i;

	/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers */
	if ((swaps = calloc((size_t)n, sizeof(*swaps))) == NULL)
		return (-1);
	for (i = 0; i < n; i++)
		if ((swaps[i] = pp_swap_new(next, &fds[(size_t)i * nt])) ==
		    NULL)
			break;
	for (int j = 0; j < n; j++)
		if (i == n)
			pp_worker_swap(&w[j], swaps[j]);
		else
			pp_swap_drop(swaps[j]);
	free(swaps);
	return (i == n ? 0 : -1);
}

int
pp_workers_swap_pending(struct pp_worker *w, int n)
{
	for (int i = 0; i < n; i++)
		if (pp_worker_swap_pending(&w[i]))
			return (1);
	return (0);
}

int
pp_workers_swap_wait(struct pp_worker *w, int n)
{
	const struct timespec tick = {0, 1000000};

	for (int waited = 0; waited < 200; waited++) {
		if (!pp_workers_swap_pending(w, n))
			return (1);
		nanosleep(&tick, NULL);
	}
	return (0);
}

size_t
pp_workers_open_tunnels(struct pp_worker *w, int n)
{
	size_t open = 0;

	for (int i = 0; i < n; i++)
		open += atomic_load(&w[i].stats.active);
	return (open);
}
