#include "tls/session_cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

struct slot {
	uint8_t key[PP_SESSION_KEY_LEN];
	char target[PP_SESSION_TARGET_MAX];
	SSL_SESSION *sess;
	uint64_t used;
};

struct pp_session_cache {
	struct slot *slots;
	size_t n, max;
	uint64_t clock;
};

struct pp_session_cache *
pp_session_cache_new(size_t max)
{
	struct pp_session_cache *c;

	if (max == 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return (NULL);
	if ((c->slots = calloc(max, sizeof(*c->slots))) == NULL) {
		free(c);
		return (NULL);
	}
	c->max = max;
	return (c);
}

SSL_SESSION **
pp_session_cache_slot(struct pp_session_cache *c, const uint8_t *key,
                      const char *target)
{
	struct slot *s = NULL, *oldest = NULL;
	size_t len = strlen(target);

	/* Cut short, two targets could share a slot. */
	if (len >= sizeof(s->target))
		return (NULL);
	for (size_t i = 0; i < c->n; i++) {
		struct slot *x = &c->slots[i];
		if (memcmp(x->key, key, PP_SESSION_KEY_LEN) == 0 &&
		    strcmp(x->target, target) == 0) {
			s = x;
			break;
		}
		if (oldest == NULL || x->used < oldest->used)
			oldest = x;
	}
	if (s == NULL) {
		/* max > 0 (pp_session_cache_new): when full, the loop saw
		 * every slot and ${oldest} is one. */
		s = c->n < c->max ? &c->slots[c->n++] : oldest;
		/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
		SSL_SESSION_free(s->sess);
		s->sess = NULL;
		memcpy(s->key, key, PP_SESSION_KEY_LEN);
		memcpy(s->target, target, len + 1);
	}
	s->used = ++c->clock;
	return (&s->sess);
}

void
pp_session_cache_free(struct pp_session_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++)
		SSL_SESSION_free(c->slots[i].sess);
	free(c->slots);
	free(c);
}
