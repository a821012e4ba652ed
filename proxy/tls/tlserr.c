#include "tls/tlserr.h"

#include <errno.h>
#include <stdint.h>

#include <openssl/err.h>

int
pp_tls_lacked_memory(void)
{
	uint32_t e;
	int oom = 0;

	while ((e = ERR_get_error()) != 0)
		oom |= ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE;
	return (oom || errno == ENOMEM);
}
