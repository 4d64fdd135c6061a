/* tuned_kv_formats: the tuning db keys entries by K/V storage and paging.
 *   - clattn_tune on an INT8 decode shape and on a paged Q4_0 one stores
 *     entries whose key says so (kv= in the db line, " kv=int8" and
 *     " kv=q4_0,paged" at the end of clattn_tuning_get's params), and no
 *     entry of plain K/V;
 *   - a db written by hand (an old line without kv= among them) then
 *     decides what a forward compiles, seen in the build options of the
 *     binary it stores: an INT8 problem takes the INT8 entry, at the exact
 *     bucket and as the nearest bucket even where a plain entry sits at its
 *     exact bucket; a paged INT8 problem the paged INT8 entry; a plain
 *     problem the old plain line; and an INT8 problem with only plain
 *     entries the built-in defaults, never the plain entries. */
#define _POSIX_C_SOURCE 200809L
#include "cache_tests.h"
#include "reference.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* B1 H2 Hkv1 Sq1 Skv{skv} D32, K and V INT8 (a scale per row, fp32) */
static clattn_problem int8_decode(int skv, int page)
{
    clattn_problem p = ct_shape_decode();
    p.seq_kv = skv;
    p.k_storage.format = p.v_storage.format = CLATTN_KV_INT8;
    if (page) {
        p.paged.enabled = 1;
        p.paged.page_size = page;
        p.paged.max_pages_per_seq = (skv + page - 1) / page;
        p.paged.num_pages = p.batch * p.paged.max_pages_per_seq;
    }
    return p;
}

static unsigned lcg = 12345u;

static unsigned next_u(void)
{
    lcg = lcg * 1664525u + 1013904223u;
    return lcg >> 8;
}

/* An INT8 problem (packed, contiguous or paged with a page of its own for
 * every sequence's page) on random codes and scales through
 * clattn_forward_host, against the double reference. */
static void int8_forward_ok(clattn_context *ctx, const clattn_problem *p, const char *what)
{
    clattn_problem n;
    int64_t nq, nk, nv, no;
    ref_normalize(p, &n);
    ref_tensor_extents(&n, &nq, &nk, &nv, &no);
    const size_t nl = (size_t)n.batch * n.heads * n.seq_q;
    const int64_t nsk = nk / n.head_dim, nsv = nv / n.head_dim_v; /* one scale per row */
    const int64_t nt = n.paged.enabled ? (int64_t)n.batch * n.paged.max_pages_per_seq : 0;
    float *q = malloc((size_t)nq * sizeof *q), *o = malloc((size_t)no * sizeof *o);
    float *lse = malloc(nl * sizeof *lse), *ks = malloc((size_t)nsk * sizeof *ks);
    float *vs = malloc((size_t)nsv * sizeof *vs);
    signed char *k = malloc((size_t)nk), *v = malloc((size_t)nv);
    int32_t *table = malloc((size_t)(nt ? nt : 1) * sizeof *table);
    double *ro = malloc((size_t)no * sizeof *ro), *go = malloc((size_t)no * sizeof *go);
    double *rl = malloc(nl * sizeof *rl), *gl = malloc(nl * sizeof *gl);
    char why[256];
    CHECK(q && o && lse && ks && vs && k && v && table && ro && go && rl && gl,
          "%s: out of memory", what);
    if (q && o && lse && ks && vs && k && v && table && ro && go && rl && gl) {
        clattn_host_buffers io;
        clattn_status st;
        for (int64_t i = 0; i < nq; i++) q[i] = (float)(next_u() % 2001u) / 1000.0f - 1.0f;
        for (int64_t i = 0; i < nk; i++) k[i] = (signed char)((int)(next_u() % 255u) - 127);
        for (int64_t i = 0; i < nv; i++) v[i] = (signed char)((int)(next_u() % 255u) - 127);
        for (int64_t i = 0; i < nsk; i++) ks[i] = (0.5f + (float)(next_u() % 1000u) / 1000.0f) / 127.0f;
        for (int64_t i = 0; i < nsv; i++) vs[i] = (0.5f + (float)(next_u() % 1000u) / 1000.0f) / 127.0f;
        for (int64_t i = 0; i < nt; i++) table[i] = (int32_t)i;
        for (int64_t i = 0; i < no; i++) o[i] = NAN;
        memset(&io, 0, sizeof io);
        io.q = q;
        io.k = k;
        io.v = v;
        io.o = o;
        io.lse = lse;
        io.k_scales = ks;
        io.v_scales = vs;
        io.block_table = nt ? table : NULL;
        st = clattn_forward_host(ctx, p, &io);
        CHECK(st == CLATTN_OK, "%s: clattn_forward_host: %s: %s", what, clattn_status_string(st),
              clattn_last_error(ctx));
        if (st == CLATTN_OK) {
            CHECK(ref_attention(p, &io, ro, rl, NULL) == 0, "%s: the reference failed", what);
            for (int64_t i = 0; i < no; i++) go[i] = o[i];
            for (size_t i = 0; i < nl; i++) gl[i] = lse[i];
            CHECK(ct_compare(p, ro, go, (size_t)no, rl, gl, nl, NULL, NULL, 0, why, sizeof why),
                  "%s: result differs from the reference: %s", what, why);
        }
    }
    free(q);
    free(o);
    free(lse);
    free(ks);
    free(vs);
    free(k);
    free(v);
    free(table);
    free(ro);
    free(go);
    free(rl);
    free(gl);
}

/* The tune: entries keyed by the format, and nothing of plain K/V. Leaves
 * the db's name and its header lines (magic, fingerprint) in name / head,
 * and the current source hash of the fused unit in src. */
static int tune_formats(char *name, size_t name_size, char *head, size_t head_size, char *src,
                        size_t src_size)
{
    char root[PATH_MAX], dir[PATH_MAX + 16], path[PATH_MAX * 2], *dbs[4];
    clattn_problem shapes[2] = {int8_decode(256, 0), ct_shape_decode()};
    clattn_tune_options o;
    clattn_tune_result r[16];
    size_t nr = 0, count = 0;
    int int8_entries = 0, q4_entries = 0, plain_entries = 0, ndb, ok = 0;
    ct_log log;
    clattn_context *ctx;
    /* B2 H2 Hkv1 Sq1 Skv100 D32 kv=q4_0 page=16 */
    shapes[1].batch = 2;
    shapes[1].seq_kv = 100;
    shapes[1].k_storage.format = shapes[1].v_storage.format = CLATTN_KV_Q4_0;
    shapes[1].paged.enabled = 1;
    shapes[1].paged.page_size = 16;
    shapes[1].paged.max_pages_per_seq = 7;
    shapes[1].paged.num_pages = 14;
    ct_fresh_dir("tuned_kv_formats", root, sizeof root);
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    memset(&o, 0, sizeof o);
    o.budget_seconds = 1.5;
    for (int i = 0; i < 2; i++) {
        double t0 = ct_now();
        clattn_status st = clattn_tune(ctx, &shapes[i], 1, &o, r, 16, &nr);
        CHECK(st == CLATTN_OK && nr >= 1, "clattn_tune (%s): %s: %s", i ? "q4_0 paged" : "int8",
              clattn_status_string(st), clattn_last_error(ctx));
        for (size_t k = 0; k < nr; k++)
            NOTE("tuned %s %s: %s (%s) in %.1f s", i ? "q4_0 paged" : "int8", r[k].unit,
                 r[k].params, r[k].tuned ? "winner" : "default", ct_now() - t0);
    }
    CHECK(log.warnings == 0, "warnings while tuning:\n%s", log.text);
    clattn_context_destroy(ctx);

    /* A new context lists them with their storage. */
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    clattn_tuning_count(ctx, &count);
    for (size_t i = 0; i < count; i++) {
        clattn_tuning_entry e;
        const char *kv;
        CHECK(clattn_tuning_get(ctx, i, &e) == CLATTN_OK, "clattn_tuning_get(%zu)", i);
        kv = strstr(e.params, "kv=");
        NOTE("  entry %s Sq%d Skv%d: %s%s", e.unit, e.seq_q_bucket, e.seq_kv_bucket, e.params,
             e.stale ? " (stale)" : "");
        if (kv && strcmp(kv, "kv=int8") == 0 && e.seq_kv_bucket == 256)
            int8_entries++;
        else if (kv && strcmp(kv, "kv=q4_0,paged") == 0 && e.seq_kv_bucket == 128)
            q4_entries++;
        else
            plain_entries++;
    }
    clattn_context_destroy(ctx);
    CHECK(int8_entries >= 1 && q4_entries >= 1 && plain_entries == 0,
          "entries: %d int8, %d q4_0 paged, %d other", int8_entries, q4_entries, plain_entries);

    snprintf(dir, sizeof dir, "%s/tuning", root);
    ndb = ct_list(dir, ".db", dbs, 4);
    CHECK(ndb == 1, "%d tuning dbs in %s", ndb, dir);
    if (ndb == 1) {
        size_t len;
        char *text, *fused;
        snprintf(path, sizeof path, "%s/%s", dir, dbs[0]);
        text = (char *)ct_read(path, &len);
        CHECK(text != NULL, "cannot read %s", path);
        if (text) {
            /* K and V INT8 (4 | 4 << 4); Q4_0 (7 | 7 << 4) and paged (1 << 16) */
            const int with_kv = ct_db_lines_with(text, " kv="),
                      int8 = ct_db_lines_with(text, " kv=68 |"),
                      q4 = ct_db_lines_with(text, " kv=65655 |"),
                      all = ct_db_lines_with(text, "");
            CHECK(int8 >= 1 && q4 >= 1 && int8 + q4 == all && with_kv == all,
                  "db lines: %d with kv=68, %d with kv=65655, %d in all:\n%s", int8, q4, all,
                  text);
            const char *second = strchr(text, '\n');
            second = second ? strchr(second + 1, '\n') : NULL;
            fused = strstr(text, "\nkernel=fused ");
            if (second && fused && strstr(fused, " src=")) {
                snprintf(name, name_size, "%s", dbs[0]);
                snprintf(head, head_size, "%.*s", (int)(second + 1 - text), text);
                snprintf(src, src_size, "%.16s", strstr(fused, " src=") + 5);
                ok = 1;
            }
            CHECK(ok, "no fused entry or header in:\n%s", text);
        }
        free(text);
    }
    ct_free_list(dbs, ndb);
    ct_remove_tree(root);
    return ok;
}

/* A fused entry line of the decode shape at bucket skv, with kv (0: the old
 * line, without kv=) and params. */
static void entry_line(char *buf, size_t size, int skv, unsigned kv, const char *params,
                       const char *src)
{
    char kvf[24] = "";
    if (kv) snprintf(kvf, sizeof kvf, " kv=%u", kv);
    snprintf(buf, size,
             "kernel=fused dtype=0 d=32 dv=32 causal=0 windowed=0 mask=0 group=2 sq=1 skv=%d%s "
             "| %s | median_ms=0.01 p20_ms=0.01 p80_ms=0.011 default_ms=0.02 | lib=%s "
             "src=%s\n",
             skv, kvf, params, clattn_version(), src);
}

/* A fresh root holding only db (file name), a forward of p (fused path) in
 * it, and the build options of the one fused binary it stored: must hold
 * every " -DNAME=v" of want, and none of refuse (each may be NULL); the
 * options go to opts when it is not NULL. */
static void check_case(const char *label, const char *name, const char *db, size_t entries,
                       clattn_problem p, const char *const *want, const char *const *refuse,
                       char *opts, size_t opts_size)
{
    char root[PATH_MAX], dir[PATH_MAX + 16], path[PATH_MAX * 2], *bins[16];
    ct_log log;
    clattn_context *ctx;
    size_t count = 0;
    int n, fused = 0;
    ct_fresh_dir("tuned_kv_case", root, sizeof root);
    snprintf(dir, sizeof dir, "%s/tuning", root);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK(ct_write(path, db, strlen(db)) == 0, "cannot write %s", path);
    p.path = CLATTN_PATH_FUSED;
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    clattn_tuning_count(ctx, &count);
    CHECK(count == entries, "%s: %zu entries load, expected %zu", label, count, entries);
    if (p.k_storage.format)
        int8_forward_ok(ctx, &p, label);
    else
        ct_forward_ok(ctx, &p, label);
    clattn_context_destroy(ctx);
    CHECK(log.warnings == 0, "%s: warnings:\n%s", label, log.text);
    snprintf(dir, sizeof dir, "%s/programs", root);
    n = ct_list(dir, ".bin", bins, 16);
    for (int i = 0; i < n; i++) {
        size_t len;
        unsigned char *data;
        snprintf(path, sizeof path, "%s/%s", dir, bins[i]);
        data = ct_read(path, &len);
        /* The key text after the 40-byte header names the kernel and its
         * complete build options (src/program_cache.c). */
        if (data && len > 40 && strstr((char *)data + 40, "kernel attn_fwd_fused")) {
            const char *opt = strstr((char *)data + 40, "\noptions ");
            const char *end = opt ? strchr(opt + 1, '\n') : NULL;
            char line[1024];
            fused++;
            if (opt && end && end - opt < (long)sizeof line - 2) {
                memcpy(line, opt + 1, (size_t)(end - opt - 1));
                strcpy(line + (end - opt - 1), " ");
                NOTE("  %-40s %s", label, line);
                if (opts) snprintf(opts, opts_size, "%s", line);
                for (int w = 0; want && want[w]; w++)
                    CHECK(strstr(line, want[w]) != NULL, "%s: built without '%s': %s", label,
                          want[w], line);
                for (int w = 0; refuse && refuse[w]; w++)
                    CHECK(strstr(line, refuse[w]) == NULL, "%s: built with '%s': %s", label,
                          refuse[w], line);
            }
        }
        free(data);
    }
    ct_free_list(bins, n);
    CHECK(fused == 1, "%s: %d fused binaries in %s, expected 1", label, fused, dir);
    ct_remove_tree(root);
}

int test_tuned_kv_formats(int argc, char **argv)
{
    char name[64], head[2048], src[32], lines[4][512], db[4096];
    (void)argc;
    (void)argv;
    if (!tune_formats(name, sizeof name, head, sizeof head, src, sizeof src)) return 1;

    /* Plain entries as clattn 1.0 wrote them (no kv=) at buckets 256 and
     * 1024, an INT8 entry at 256 and a paged INT8 one at 256, each with
     * values of its own (the CPU default is FV_VEC=16 on AVX-512, 8 on
     * AVX2, and FV_GQA=1). */
    entry_line(lines[0], sizeof lines[0], 256, 0, "FUSED_VEC=1 FV_VEC=4", src);
    entry_line(lines[1], sizeof lines[1], 1024, 0, "FUSED_VEC=1 FV_VEC=4", src);
    entry_line(lines[2], sizeof lines[2], 256, 68, "FUSED_VEC=1 FV_VEC=8", src);
    entry_line(lines[3], sizeof lines[3], 256, 68 | 0x10000, "FUSED_VEC=1 FV_VEC=8 FV_GQA=0",
               src);
    snprintf(db, sizeof db, "%s%s%s%s%s", head, lines[0], lines[1], lines[2], lines[3]);
    {
        const char *want[] = {" -DK_FMT=4 ", " -DV_FMT=4 ", " -DFV_VEC=8 ", " -DFV_GQA=1 ", NULL};
        const char *refuse[] = {" -DPAGED=", NULL};
        check_case("int8, its exact bucket", name, db, 4, int8_decode(256, 0), want, refuse,
                   NULL, 0);
        /* bucket 1024: the plain entry is exact, the INT8 one the nearest */
        check_case("int8, the nearest int8 bucket", name, db, 4, int8_decode(1000, 0), want,
                   refuse, NULL, 0);
    }
    {
        const char *want[] = {" -DK_FMT=4 ", " -DPAGED=1 ", " -DFV_VEC=8 ", " -DFV_GQA=0 ", NULL};
        check_case("paged int8", name, db, 4, int8_decode(256, 16), want, NULL, NULL, 0);
    }
    {
        const char *want[] = {" -DFV_VEC=4 ", NULL};
        const char *refuse[] = {" -DK_FMT=", " -DPAGED=", NULL};
        check_case("plain, an old line without kv=", name, db, 4, ct_shape_decode(), want,
                   refuse, NULL, 0);
    }
    /* Only plain entries: an INT8 problem runs the built-in defaults, built
     * with the same options as with an empty db (FV_VEC 16 on AVX-512, 8 on
     * AVX2: the device's own), not the plain entries' FV_VEC=4. */
    {
        char none[1024] = "", plain[1024] = "";
        snprintf(db, sizeof db, "%s", head);
        check_case("int8 with no entries", name, db, 0, int8_decode(256, 0), NULL, NULL, none,
                   sizeof none);
        snprintf(db, sizeof db, "%s%s%s", head, lines[0], lines[1]);
        const char *want[] = {" -DK_FMT=4 ", NULL};
        check_case("int8 with only plain entries", name, db, 2, int8_decode(256, 0), want, NULL,
                   plain, sizeof plain);
        CHECK(none[0] != '\0' && strcmp(none, plain) == 0,
              "only plain entries built other options than an empty db:\n%s\n%s", plain, none);
    }
    return ct_failures ? 1 : 0;
}
