#include "util/bufpool.h"

#include <stdlib.h>

int
pp_bufpool_init(struct pp_bufpool *p, size_t cap)
{
	p->nfree = 0;
	p->in_use = 0;
	p->cap = cap;
	p->free = calloc(cap ? cap : 1, sizeof(void *));
	return (p->free ? 0 : -1);
}

uint8_t *
pp_bufpool_get(struct pp_bufpool *p)
{
	uint8_t *b;

	if (p->nfree > 0)
		b = p->free[--p->nfree];
	else if ((b = malloc(PP_BUF_SIZE)) == NULL)
		return (NULL);
	p->in_use++;
	return (b);
}

void
pp_bufpool_put(struct pp_bufpool *p, uint8_t *b)
{
	if (b == NULL)
		return;
	p->in_use--;
	if (p->nfree < p->cap)
		p->free[p->nfree++] = b;
	else
		free(b);
}

void
pp_bufpool_destroy(struct pp_bufpool *p)
{
	while (p->nfree > 0)
		free(p->free[--p->nfree]);
	free(p->free);
	p->free = NULL;
}
