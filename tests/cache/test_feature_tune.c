/* tuned_features: the tuner on problems with score features. Its check of
 * every candidate computes the sampled rows on the host through the score
 * steps of src/feature_table.c, so a step the host and the kernels disagree
 * on would reject every candidate, the default included. Two shapes:
 * softcap, sinks and linear ALiBi with causal rows; symmetric ALiBi with
 * chunks. Each must be tuned with candidates tried and none rejected, and
 * its db entry keyed by the features' bits (feat=7: softcap 0x1, sinks 0x2,
 * ALiBi 0x4; feat=1092: ALiBi 0x4, chunks 0x40, symmetric ALiBi 0x400). */
#define _POSIX_C_SOURCE 200809L
#include "cache_tests.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

int test_tuned_features(int argc, char **argv)
{
    char root[PATH_MAX], dir[PATH_MAX + 16], path[PATH_MAX * 2], *dbs[4];
    clattn_problem shapes[2] = {ct_shape_prefill(), ct_shape_prefill()};
    const char *names[2] = {"softcap+sinks+alibi, causal", "symmetric alibi + chunks"};
    clattn_tune_options o;
    clattn_tune_result r[16];
    size_t nr = 0;
    ct_log log;
    (void)argc;
    (void)argv;
    shapes[0].softcap = 3.0f;
    shapes[0].sinks = 1;
    shapes[0].alibi = 1;
    shapes[1].causal = CLATTN_CAUSAL_NONE;
    shapes[1].alibi = 1;
    shapes[1].alibi_mode = CLATTN_ALIBI_SYMMETRIC;
    shapes[1].chunk_size = 16;

    ct_fresh_dir("tuned_features", root, sizeof root);
    ct_log_reset(&log);
    clattn_context *ctx = ct_context(root, &log);
    memset(&o, 0, sizeof o);
    o.budget_seconds = 10.0; /* a cold PoCL compiles for seconds before the first candidate */
    for (int i = 0; i < 2; i++) {
        /* The default programs built (clattn_supports) and cached before
         * the budget starts: a cold compile of these kernels took the whole
         * 10 s on a loaded AVX2 host, leaving 0 tried. */
        CHECK(clattn_supports(ctx, &shapes[i]) == CLATTN_OK, "clattn_supports (%s): %s",
              names[i], clattn_last_error(ctx));
        clattn_status st = clattn_tune(ctx, &shapes[i], 1, &o, r, 16, &nr);
        CHECK(st == CLATTN_OK && nr >= 1, "clattn_tune (%s): %s: %s", names[i],
              clattn_status_string(st), clattn_last_error(ctx));
        for (size_t k = 0; st == CLATTN_OK && k < nr; k++) {
            NOTE("tuned %s, %s: %s (%s), %d tried, %d rejected", names[i], r[k].unit,
                 r[k].params, r[k].tuned ? "winner" : "default", r[k].tried, r[k].rejected);
            CHECK(r[k].tried >= 1 && r[k].rejected == 0,
                  "%s, %s: %d tried, %d rejected (%s): the host check and the kernels "
                  "disagree",
                  names[i], r[k].unit, r[k].tried, r[k].rejected, r[k].rejected_reason);
        }
    }
    CHECK(log.warnings == 0, "warnings while tuning:\n%s", log.text);
    clattn_context_destroy(ctx);

    snprintf(dir, sizeof dir, "%s/tuning", root);
    const int ndb = ct_list(dir, ".db", dbs, 4);
    CHECK(ndb == 1, "%d tuning dbs in %s", ndb, dir);
    if (ndb == 1) {
        size_t len;
        snprintf(path, sizeof path, "%s/%s", dir, dbs[0]);
        char *text = (char *)ct_read(path, &len);
        CHECK(text != NULL, "cannot read %s", path);
        if (text) {
            const int f7 = ct_db_lines_with(text, " feat=7 |"),
                      f1092 = ct_db_lines_with(text, " feat=1092 |"),
                      all = ct_db_lines_with(text, "");
            CHECK(f7 >= 1 && f1092 >= 1 && f7 + f1092 == all,
                  "db lines: %d with feat=7, %d with feat=1092, %d in all:\n%s", f7, f1092, all,
                  text);
        }
        free(text);
    }
    ct_free_list(dbs, ndb);
    ct_remove_tree(root);
    return ct_failures != 0;
}
