/*
 * clattn-decode-check: compares two --dump files of clattn-decode.
 *
 *   clattn-decode-check REF RUN --max-rel-l2 TOL [--same-tokens]
 *
 * The error of a step is the relative L2 norm ||run - ref|| / ||ref|| of
 * its logits over the whole batch; the worst step must be within TOL, and
 * with --same-tokens every generated token must be equal too. Exit 0 on
 * pass, 1 on a failed check, 2 on a usage or file error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"

static int same_tokens(const decode_dump *a, const decode_dump *b)
{
    const size_t n = (size_t)a->batch * (size_t)a->steps;
    int equal = 0;
    for (size_t i = 0; i < n; ++i)
        equal += a->tokens[i] == b->tokens[i];
    printf("tokens: %d of %zu equal\n", equal, n);
    return (size_t)equal == n;
}

static int compare(const decode_dump *ref, const decode_dump *run, double tol, int tokens)
{
    if (ref->batch != run->batch || ref->vocab != run->vocab || ref->steps != run->steps) {
        fprintf(stderr, "the dumps differ in shape: %dx%dx%d and %dx%dx%d\n", ref->batch,
                ref->vocab, ref->steps, run->batch, run->vocab, run->steps);
        return 0;
    }
    const size_t n = (size_t)ref->batch * (size_t)ref->vocab;
    double worst = 0.0, last = 0.0;
    int worst_step = 0, bitwise = 1;
    for (int s = 0; s < ref->steps; ++s) {
        const float *a = ref->logits + (size_t)s * n, *b = run->logits + (size_t)s * n;
        last = dump_step_error(ref, run, s);
        if (!(last <= worst) && !isnan(worst)) { /* a NaN step stays the worst */
            worst = last;
            worst_step = s;
        }
        bitwise = bitwise && !memcmp(a, b, n * sizeof *a);
    }
    printf("logits: relative L2 error last step %.3g, worst step %.3g (step %d of %d)%s; "
           "bound %.3g\n",
           last, worst, worst_step, ref->steps, bitwise ? ", bit-identical" : "", tol);
    const int tokens_ok = !tokens || same_tokens(ref, run);
    return worst <= tol && tokens_ok;
}

int main(int argc, char **argv)
{
    const char *paths[2] = {NULL, NULL};
    double tol = -1.0;
    int tokens = 0, n_paths = 0;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--max-rel-l2") && i + 1 < argc)
            tol = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--same-tokens"))
            tokens = 1;
        else if (argv[i][0] != '-' && n_paths < 2)
            paths[n_paths++] = argv[i];
        else
            n_paths = 3;
    }
    if (n_paths != 2 || !(tol >= 0.0)) {
        fprintf(stderr, "usage: clattn-decode-check REF RUN --max-rel-l2 TOL [--same-tokens]\n");
        return 2;
    }
    decode_dump ref, run;
    if (dump_read(paths[0], &ref) != 0)
        return 2;
    if (dump_read(paths[1], &run) != 0) {
        dump_free(&ref);
        return 2;
    }
    const int ok = compare(&ref, &run, tol, tokens);
    dump_free(&ref);
    dump_free(&run);
    if (!ok)
        printf("FAILED: %s against %s\n", paths[1], paths[0]);
    return ok ? 0 : 1;
}
