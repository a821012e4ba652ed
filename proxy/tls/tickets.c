#include "tls/tickets.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/cipher.h>
#include <openssl/digest.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

struct ticket_key {
	uint8_t name[16]; /* sent in the clear in each ticket */
	uint8_t aes[16];  /* AES-128-CBC */
	uint8_t mac[32];  /* HMAC-SHA256 */
	uint64_t born;    /* seconds; 0: no key */
};

struct pp_tickets {
	char *name;
	pthread_mutex_t lock; /* workers seal and open on their threads */
	struct ticket_key cur, prev;
	struct pp_tickets *next;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pp_tickets *registry;
static uint64_t (*clock_fn)(void);
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int ring_index = -1;

static void
init_once(void)
{
	ring_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

void
pp_tickets_set_clock(uint64_t (*now)(void))
{
	clock_fn = now;
}

static uint64_t
now_s(void)
{
	struct timespec ts;

	if (clock_fn != NULL)
		return (clock_fn());
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec + 1); /* never 0: 0 means "no key" */
}

/* A fresh random key born at ${now}.  Return 0, or -1. */
static int
key_new(struct ticket_key *k, uint64_t now)
{
	if (!RAND_bytes(k->name, sizeof(k->name)) ||
	    !RAND_bytes(k->aes, sizeof(k->aes)) ||
	    !RAND_bytes(k->mac, sizeof(k->mac)))
		return (-1);
	k->born = now;
	return (0);
}

static void
key_wipe(struct ticket_key *k)
{
	OPENSSL_cleanse(k, sizeof(*k));
}

/* Bring ${k}'s keys up to date for ${now} (lock held): the current key
 * retires after PP_TICKETS_ROTATE_S, the previous one when the current
 * one does.  Return 0, or -1 if no key could be made. */
static int
rotate(struct pp_tickets *k, uint64_t now)
{
	if (k->cur.born != 0 && now < k->cur.born + PP_TICKETS_ROTATE_S)
		return (0);
	if (k->cur.born != 0 && now < k->cur.born + 2 * PP_TICKETS_ROTATE_S)
		k->prev = k->cur; /* its tickets open for one more period */
	else
		key_wipe(&k->prev); /* idle so long that both are too old */
	key_wipe(&k->cur);
	return (key_new(&k->cur, now));
}

struct pp_tickets *
pp_tickets_get(const char *name)
{
	struct pp_tickets *k;

	pthread_mutex_lock(&registry_lock);
	for (k = registry; k != NULL; k = k->next) {
		if (strcmp(k->name, name) == 0)
			goto out;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL ||
	    (k->name = strdup(name)) == NULL) {
		free(k);
		k = NULL;
		goto out;
	}
	pthread_mutex_init(&k->lock, NULL);
	k->next = registry;
	registry = k;
out:
	pthread_mutex_unlock(&registry_lock);
	return (k);
}

/* BoringSSL's ticket key callback: seal with the current key (1), or open
 * with the key the ticket names: 1 with the current one, 2 (open, and
 * issue a new ticket) with the previous one, 0 (full handshake) with a
 * key this ring no longer has; -1 on failure. */
static int
ticket_cb(SSL *ssl, uint8_t *key_name, uint8_t *iv, EVP_CIPHER_CTX *cctx,
          HMAC_CTX *hctx, int encrypt)
{
	struct pp_tickets *k =
	    SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ring_index);
	struct ticket_key key;
	int rc = 1;

	if (k == NULL)
		return (-1);
	pthread_mutex_lock(&k->lock);
	if (rotate(k, now_s()) != 0) {
		pthread_mutex_unlock(&k->lock);
		return (-1);
	}
	if (encrypt ||
	    memcmp(key_name, k->cur.name, sizeof(k->cur.name)) == 0) {
		key = k->cur;
	} else if (k->prev.born != 0 &&
	           memcmp(key_name, k->prev.name, sizeof(k->prev.name)) == 0) {
		key = k->prev;
		rc = 2;
	} else {
		rc = 0;
	}
	pthread_mutex_unlock(&k->lock);
	if (rc == 0)
		return (0);
	if (encrypt) {
		if (!RAND_bytes(iv, 16)) {
			rc = -1;
			goto done;
		}
		memcpy(key_name, key.name, sizeof(key.name));
	}
	if (!HMAC_Init_ex(hctx, key.mac, sizeof(key.mac), EVP_sha256(), NULL) ||
	    !(encrypt ? EVP_EncryptInit_ex(cctx, EVP_aes_128_cbc(), NULL,
	                                   key.aes, iv)
	              : EVP_DecryptInit_ex(cctx, EVP_aes_128_cbc(), NULL,
	                                   key.aes, iv)))
		rc = -1;
done:
	key_wipe(&key);
	return (rc);
}

int
pp_tickets_attach(SSL_CTX *ctx, struct pp_tickets *k)
{
	pthread_once(&once, init_once);
	if (ring_index < 0 || !SSL_CTX_set_ex_data(ctx, ring_index, k))
		return (-1);
	return (SSL_CTX_set_tlsext_ticket_key_cb(ctx, ticket_cb) ? 0 : -1);
}
