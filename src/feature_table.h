/* The score features of a problem (softcap, sinks, ALiBi, masks, left
 * padding, chunks, varlen) in one table: what each is called in clattn.h and
 * in the kernels, its bit of the tuning key, which paths can run it, how it
 * is validated and what it does to a score on the host. Adding a score
 * feature is a row here (feature_table.c), its step in cl/score.h, its field in
 * clattn.h, and the test reference. */
#ifndef CLATTN_FEATURE_TABLE_H
#define CLATTN_FEATURE_TABLE_H

#include "problem.h"

/* The additive mask's bit and the two bits above it that hold its storage
 * type; the kernels' build options need both. Every other bit is named only
 * by its row of the table. Bit values are stored in tuning dbs: never
 * renumber them. */
#define CLATTN__F_BIAS 0x8u /* an additive mask: the 0.1 fp32 mask or problem.bias */
#define CLATTN__F_BIAS_DTYPE_SHIFT 8

/* How a feature may run: each 1 is a promise the feature keeps. */
enum {
    CLATTN__FT_GEMM_QK = 1, /* its step can follow a GEMM's whole scaled scores */
    CLATTN__FT_ALL_KEYS = 2, /* it never hides a key (a GEMM P*V may follow) */
    CLATTN__FT_TUNABLE = 4, /* the tuner can make up its inputs and check them */
};

/* The problem's values that the host score steps read. */
typedef struct clattn__score_at {
    const clattn_problem *p;
    unsigned bits;       /* clattn__shape_features of the problem, once */
    const float *slopes; /* ALiBi slopes ([heads]) when the problem has them */
    int h;               /* query head */
    int64_t ip, j;       /* the query's position among the keys, the key */
} clattn__score_at;

typedef struct clattn__feature {
    unsigned bit;
    const char *define; /* the kernels' -D switch (cl/common.h, cl/score.h) */
    const char *field;  /* its field in clattn_problem, for messages */
    unsigned traits;    /* CLATTN__FT_* */
    /* 1 when the normalised problem uses it */
    int (*on)(const clattn__shape *s);
    /* validation of its fields (NULL: nothing beyond the common checks) */
    clattn_status (*check)(struct clattn_context *ctx, const clattn_problem *p);
    /* a score step of the pipeline (clattn.h), in double on the host; NULL
     * for features that are not steps (visibility, storage of a mask) */
    double (*step)(const clattn__score_at *at, double s);
} clattn__feature;

/* NULL-define ended, in the order of the score pipeline. */
extern const clattn__feature clattn__features[];

/* Checks the fields of every feature (and the reserved block) of *p, before
 * the views and masks are; a message names the field. */
clattn_status clattn__features_check(struct clattn_context *ctx, const clattn_problem *p);

/* The CLATTN__F_* bits of a normalised problem (its additive mask's storage
 * type included), once has_mask is known. */
unsigned clattn__shape_features(const clattn__shape *s);

/* 1 when every feature in `bits` has all of `traits`. */
int clattn__features_have(unsigned bits, unsigned traits);

/* The first feature in `bits` without all of `traits`, or NULL. */
const clattn__feature *clattn__features_lacking(unsigned bits, unsigned traits);

/* s after the score steps of every feature in at->bits that has one
 * (softcap, ALiBi, ...), in the pipeline's order. */
double clattn__features_score(const clattn__score_at *at, double s);

#endif
