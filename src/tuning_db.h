/* Tuned kernel parameters per device: an in-memory table, its text file
 * format, lookups with nearest-bucket fallback. No OpenCL. */
#ifndef CLATTN_TUNING_DB_H
#define CLATTN_TUNING_DB_H

#include <stddef.h>
#include <stdint.h>

#define CLATTN__DB_MAX_PARAMS 24 /* also holds a whole CLATTN_PARAMS */
#define CLATTN__DB_NAME 24

/* What a tuned result applies to. Sequence lengths are bucketed to powers of
 * two; "kernel" names the tuned unit: fused, splitkv, combine, qk, softmax,
 * av, or path (the measured best path for the bucket). */
typedef struct clattn__tune_key {
    char kernel[CLATTN__DB_NAME];
    int dtype, head_dim, head_dim_v;
    int causal, windowed, has_mask, group;
    int sq_bucket, skv_bucket;
    unsigned features; /* CLATTN__F_* score features; 0 for plain problems */
    unsigned kv;       /* CLATTN__KV_* K/V storage and paging; 0 = the dtype's, contiguous */
} clattn__tune_key;

/* The kv field of a key: how K and V are stored, as the kernels are built
 * for it (src/kernels.h's clattn__kv_layout). Stored in tuning dbs: never
 * renumber. A format field is a clattn_kv_format, 0 when the storage is the
 * problem's dtype; a group field 0 for the whole row (or no groups), else
 * 1, 2, 3 for 32, 64, 128 channels per scale. */
#define CLATTN__KV_K_FMT_SHIFT 0    /* 4 bits */
#define CLATTN__KV_V_FMT_SHIFT 4    /* 4 bits */
#define CLATTN__KV_K_GROUP_SHIFT 8  /* 2 bits */
#define CLATTN__KV_V_GROUP_SHIFT 10 /* 2 bits */
#define CLATTN__KV_K_F16_SCALES 0x1000u
#define CLATTN__KV_V_F16_SCALES 0x2000u
#define CLATTN__KV_K_PER_HEAD 0x4000u
#define CLATTN__KV_V_PER_HEAD 0x8000u
#define CLATTN__KV_PAGED 0x10000u
#define CLATTN__KV_MAX 0x1ffffu

/* Whether kv is a code clattn makes: formats in range, groups only with
 * INT8/INT4, fp16 scales only where the format has scales, per-head only
 * with FP8, no other bits. */
int clattn__db_kv_valid(unsigned kv);

/* kv as text for people ("int8", "int8/g32/f16s", "k:q8_0,v:fp8_e4m3/head",
 * "int4,paged", "paged"; "" for 0): the formats and their options, K's and
 * V's apart when they differ ("dtype" for the problem's own type). Returns
 * the length, or -1 if it did not fit. */
int clattn__db_kv_text(unsigned kv, char *buf, size_t size);

typedef struct clattn__tune_entry {
    clattn__tune_key key;
    int nparams;
    char names[CLATTN__DB_MAX_PARAMS][CLATTN__DB_NAME];
    int values[CLATTN__DB_MAX_PARAMS];
    double median_ms, p20_ms, p80_ms, default_ms;
    char lib[CLATTN__DB_NAME];
    uint64_t src_hash;
} clattn__tune_entry;

typedef struct clattn__tuning_db {
    char fingerprint[1024];
    clattn__tune_entry *entries;
    size_t count, capacity;
} clattn__tuning_db;

/* The power-of-two bucket of a sequence length (1, 2, 4, ...). */
int clattn__seq_bucket(int n);

void clattn__db_init(clattn__tuning_db *db);
void clattn__db_free(clattn__tuning_db *db);

/* Parses text (a whole file). Lines that do not parse, and a last line
 * without its newline (an interrupted append), are skipped and counted in
 * *bad. Later entries replace earlier ones with the same key. Returns 0, or
 * -1 when the header is missing or names another format version. */
int clattn__db_parse(clattn__tuning_db *db, const char *text, size_t len, int *bad);

/* One entry as a line of text, newline included; returns its length or -1. */
int clattn__db_format_entry(const clattn__tune_entry *e, char *buf, size_t size);

/* The whole db as text (header and every entry); malloc'd, NULL on failure. */
char *clattn__db_format(const clattn__tuning_db *db, size_t *len);

/* Adds e, replacing an entry with an equal key. 0, or -1 out of memory. */
int clattn__db_put(clattn__tuning_db *db, const clattn__tune_entry *e);

/* The entry with exactly this key, else the one of the same kind (all key
 * fields but the buckets, so the same K/V storage and paging too) whose
 * buckets are nearest in log2 distance, else NULL. *exact tells which. */
const clattn__tune_entry *clattn__db_find(const clattn__tuning_db *db,
                                          const clattn__tune_key *key, int *exact);

/* A parameter's value in e, or fallback when e does not set it. */
int clattn__db_param(const clattn__tune_entry *e, const char *name, int fallback);

#endif
