/* The file --dump writes and clattn-decode-check reads: the tokens a run
 * generated and the logits of every generation step, so two runs (formats,
 * paged or not) can be compared after the fact.
 *
 * Layout, native byte order (written and read on one machine):
 *   char     magic[8]   "CLADECOD"
 *   uint32   version    1
 *   int32    batch, vocab, steps
 *   int32    tokens[batch][steps]        the argmax of each step
 *   float    logits[steps][batch][vocab] the last block is the final step's */
#ifndef DECODE_DUMP_H
#define DECODE_DUMP_H

#include <stdint.h>

typedef struct decode_dump {
    int batch, vocab, steps;
    int32_t *tokens;
    float *logits;
} decode_dump;

/* Both return 0 on success, else print why and return -1. dump_write goes
 * through a temporary file and a rename, so a reader never sees half a
 * file. dump_read allocates what dump_free releases. */
int dump_write(const char *path, const decode_dump *d);
int dump_read(const char *path, decode_dump *d);
void dump_free(decode_dump *d);

/* ||run - ref|| / ||ref|| over the logits of one step (the whole batch);
 * NaN in run gives NaN, never a small number. */
double dump_step_error(const decode_dump *ref, const decode_dump *run, int step);

#endif
