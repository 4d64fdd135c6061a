/* The decoder in double precision on the host, with its own attention and
 * an unquantized cache: what the device's logits are checked against. */
#ifndef DECODE_REFERENCE_H
#define DECODE_REFERENCE_H

#include "generate.h"

/* Replays the inputs of a run (trace) through the model and writes the
 * logits of the steps from trace->first on into out, laid out as
 * generate() lays them (tokens: the reference's own argmax). dump_free
 * releases them. */
void reference_run(const model_weights *w, const generate_trace *trace, decode_dump *out);

#endif
