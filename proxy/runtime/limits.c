#include "runtime/limits.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tls/identity.h"

struct peer_count {
	char id[PP_PEER_ID_MAX + 1];
	uint32_t n;
};

struct pp_limit {
	struct pp_limit *next;
	char *name;
	atomic_uint open;
	pthread_mutex_t lock; /* guards peers */
	struct peer_count *peers;
	size_t npeers, cap;
	struct pp_tstats stats;
};

/* Every tunnel name ever seen, hashed: a node with thousands of peers
 * looks each of them up at every reload. */
#define REGISTRY_BUCKETS 4096

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pp_limit *registry[REGISTRY_BUCKETS];

/* FNV-1a of ${s}, reduced to a bucket. */
static size_t
bucket_of(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return (h % REGISTRY_BUCKETS);
}

struct pp_limit *
pp_limit_get(const char *name)
{
	size_t b = bucket_of(name);
	struct pp_limit *l;

	pthread_mutex_lock(&registry_lock);
	for (l = registry[b]; l != NULL; l = l->next) {
		if (strcmp(l->name, name) == 0)
			goto out;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->name = strdup(name)) == NULL) {
		free(l);
		l = NULL;
		goto out;
	}
	atomic_init(&l->open, 0);
	pthread_mutex_init(&l->lock, NULL);
	pp_tstats_init(&l->stats);
	l->next = registry[b];
	registry[b] = l;
out:
	pthread_mutex_unlock(&registry_lock);
	return (l);
}

int
pp_limit_enter(struct pp_limit *l, uint32_t max)
{
	unsigned now = atomic_fetch_add(&l->open, 1);

	if (max != 0 && now >= max) {
		atomic_fetch_sub(&l->open, 1);
		return (-1);
	}
	return (0);
}

void
pp_limit_leave(struct pp_limit *l)
{
	atomic_fetch_sub(&l->open, 1);
}

uint32_t
pp_limit_open(struct pp_limit *l)
{
	return (atomic_load(&l->open));
}

int
pp_limit_peer_enter(struct pp_limit *l, const char *peer, uint32_t max)
{
	struct peer_count *slot = NULL;
	size_t len = strlen(peer);
	int rc = -1;

	if (len > PP_PEER_ID_MAX) /* never a peer id (tls/identity.h) */
		return (-1);
	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < l->npeers && slot == NULL; i++) {
		if (strcmp(l->peers[i].id, peer) == 0)
			slot = &l->peers[i];
	}
	/* Reuse a peer's slot once its count is back to zero. */
	for (size_t i = 0; i < l->npeers && slot == NULL; i++) {
		if (l->peers[i].n == 0) {
			slot = &l->peers[i];
			memcpy(slot->id, peer, len + 1);
		}
	}
	if (slot == NULL) {
		if (l->npeers == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 16;
			struct peer_count *p =
			    realloc(l->peers, cap * sizeof(*p));
			if (p == NULL)
				goto out;
			l->peers = p;
			l->cap = cap;
		}
		slot = &l->peers[l->npeers++];
		memcpy(slot->id, peer, len + 1);
		slot->n = 0;
	}
	if (max == 0 || slot->n < max) {
		slot->n++;
		rc = 0;
	}
out:
	pthread_mutex_unlock(&l->lock);
	return (rc);
}

void
pp_limit_peer_leave(struct pp_limit *l, const char *peer)
{
	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < l->npeers; i++) {
		if (l->peers[i].n > 0 && strcmp(l->peers[i].id, peer) == 0) {
			l->peers[i].n--;
			break;
		}
	}
	pthread_mutex_unlock(&l->lock);
}

void
pp_limit_peers_each(struct pp_limit *l,
                    void (*fn)(void *arg, const char *peer, uint32_t n),
                    void *arg)
{
	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < l->npeers; i++) {
		if (l->peers[i].n > 0)
			fn(arg, l->peers[i].id, l->peers[i].n);
	}
	pthread_mutex_unlock(&l->lock);
}

struct pp_tstats *
pp_limit_stats(struct pp_limit *l)
{
	return (&l->stats);
}
