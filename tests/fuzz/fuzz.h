/* Shared by the fuzz harnesses. Each harness defines LLVMFuzzerTestOneInput;
 * libFuzzer drives it when built with -fsanitize=fuzzer, and replay.c's main
 * feeds it the kept corpus in every other build. A broken invariant aborts,
 * so libFuzzer keeps the input as a crash and the replay test fails. The
 * message goes to stdout: run.sh closes the harnesses' stderr, where
 * attn-tune's parsers print every rejection. */
#ifndef CLATTN_FUZZ_H
#define CLATTN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, what)                                                         \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            printf("%s:%d: invariant broken: %s (%s)\n", __FILE__, __LINE__, what, #cond); \
            fflush(stdout);                                                            \
            abort();                                                                   \
        }                                                                              \
    } while (0)

#endif
