/* What every part of the example shares: fatal errors and whole files. An
 * example's errors end the program with a message and exit status 1: there
 * is nothing to recover, and the OS releases what was held. */
#ifndef MINILM_UTIL_H
#define MINILM_UTIL_H

#include <stddef.h>
#include <stdio.h>

/* Exit status of a run the device cannot do (as clattn-decode). */
#define MINILM_EXIT_UNSUPPORTED 77

#if defined(__GNUC__)
#define MINILM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MINILM_PRINTF(a, b)
#endif

void die(const char *fmt, ...) MINILM_PRINTF(1, 2);
void *xmalloc(size_t bytes);

/* The whole file, with a NUL after its last byte (text files become C
 * strings); dies naming the path when it cannot be read or is larger than
 * max_bytes. */
unsigned char *read_file(const char *path, size_t max_bytes, size_t *size);
/* The same for an open stream; name is for messages. */
unsigned char *read_stream(FILE *f, const char *name, size_t max_bytes, size_t *size);

/* dir + "/" + name in a new string. */
char *path_join(const char *dir, const char *name);

#endif
