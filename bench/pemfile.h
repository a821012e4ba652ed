#ifndef BENCH_PEMFILE_H
#define BENCH_PEMFILE_H

/*
 * The benchmark tools' PEM reader: the first certificate or private key of
 * a file, or exit 2 naming the file.  Header-only, so each tool stays one
 * source file compiled on its own.
 */

#include <stdio.h>
#include <stdlib.h>

#include <openssl/pem.h>

/* pem_read_or_exit(tool, path, cert): the first certificate (${cert}
 * non-zero: an X509 *) or private key (an EVP_PKEY *) in ${path}; on
 * failure print "${tool}: ..." and exit 2. */
static void *
pem_read_or_exit(const char *tool, const char *path, int cert)
{
	FILE *f = fopen(path, "r");
	void *p;

	if (f == NULL) {
		fprintf(stderr, "%s: ", tool);
		perror(path);
		exit(2);
	}
	p = cert ? (void *)PEM_read_X509(f, NULL, NULL, NULL)
	         : (void *)PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (p == NULL) {
		fprintf(stderr, "%s: %s: no %s\n", tool, path,
		        cert ? "certificate" : "private key");
		exit(2);
	}
	return (p);
}

#endif
