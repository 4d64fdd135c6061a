/* Kernel sources (embedded or from CLATTN_KERNEL_DIR) and build options. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feature_table.h"
#include "kernels.h"

static const struct {
    const char *file, *kernel;
} families[CLATTN__K_COUNT] = {
    [CLATTN__K_QK] = {"qk.cl", "attn_qk"},
    [CLATTN__K_SOFTMAX] = {"softmax.cl", "attn_softmax"},
    [CLATTN__K_AV] = {"av.cl", "attn_av"},
    [CLATTN__K_FUSED] = {"fused.cl", "attn_fwd_fused"},
    [CLATTN__K_COMBINE] = {"combine.cl", "attn_splitkv_combine"},
    [CLATTN__K_FUSED_VEC] = {"fused_vec.cl", "attn_fwd_fused_vec"},
    [CLATTN__K_FUSED_LANES] = {"fused_lanes.cl", "attn_fwd_fused_lanes"},
    [CLATTN__K_MERGE] = {"merge.cl", "attn_merge"},
    [CLATTN__K_KV_APPEND] = {"kv_append.cl", "attn_kv_append"},
};

const char *clattn__kernel_name(clattn__kernel_id id) { return families[id].kernel; }

int clattn__cfg_has(const clattn__kernel_config *cfg, clattn__tunable_id t)
{
    return clattn__tunables[t].kernel == (int)cfg->id &&
           clattn__tunable_slot(t) < CLATTN__MAX_PARAMS;
}

int clattn__cfg_get(const clattn__kernel_config *cfg, clattn__tunable_id t)
{
    assert(clattn__cfg_has(cfg, t));
    return clattn__cfg_has(cfg, t) ? cfg->values[clattn__tunable_slot(t)] : 0;
}

void clattn__cfg_set(clattn__kernel_config *cfg, clattn__tunable_id t, int value)
{
    assert(clattn__cfg_has(cfg, t));
    if (clattn__cfg_has(cfg, t))
        cfg->values[clattn__tunable_slot(t)] = value;
}

clattn__kernel_id clattn__fused_kernel(int fused_vec)
{
    return fused_vec == 2 ? CLATTN__K_FUSED_LANES
           : fused_vec    ? CLATTN__K_FUSED_VEC
                          : CLATTN__K_FUSED;
}

int clattn__fused_kind(clattn__kernel_id id)
{
    return id == CLATTN__K_FUSED_LANES ? 2 : id == CLATTN__K_FUSED_VEC ? 1 : 0;
}

clattn__tunable_id clattn__split_tunable(clattn__kernel_id id)
{
    return id == CLATTN__K_FUSED_LANES ? CLATTN__T_FL_SPLIT_KV
           : id == CLATTN__K_FUSED_VEC ? CLATTN__T_FV_SPLIT_KV
                                       : CLATTN__T_SPLIT_KV;
}

void clattn__cfg_defaults(clattn__kernel_config *cfg, clattn__kernel_id id,
                          clattn__device_class dev_class)
{
    const int col = dev_class == CLATTN__CLASS_GPU ? CLATTN__DFLT_GPU : CLATTN__DFLT_CPU;
    cfg->id = id;
    memset(cfg->values, 0, sizeof cfg->values);
    clattn__tunable_id ids[CLATTN__MAX_PARAMS];
    const int n = clattn__kernel_tunables(id, ids);
    for (int i = 0; i < n; ++i)
        clattn__cfg_set(cfg, ids[i], clattn__tunables[ids[i]].dflt[col]);
}

static char *read_text(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static const clattn__embedded_file *embedded(const char *name)
{
    for (const clattn__embedded_file *f = clattn__embedded_files; f->name; ++f)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

/* The kernels' prelude, joined in this order ahead of the kernel file
 * (cl/common.h includes the other two itself only when compiled alone). */
static const char *const prelude[] = {"common.h", "kv_read.h", "score.h"};
enum { N_PRELUDE = sizeof prelude / sizeof prelude[0], N_PARTS = N_PRELUDE + 1 };
static const char joined_define[] = "#define CLATTN_PRELUDE_JOINED 1\n";

/* One part's text, from CLATTN_KERNEL_DIR when set, else embedded. */
static char *part_text(const char *dir, const char *name, size_t *len, char *msg,
                       size_t msg_size)
{
    if (dir && *dir) {
        char *t = read_text(dir, name, len);
        if (!t)
            snprintf(msg, msg_size, "cannot read %s/%s (CLATTN_KERNEL_DIR)", dir, name);
        return t;
    }
    const clattn__embedded_file *f = embedded(name);
    char *t = f ? malloc(f->len + 1) : NULL;
    if (!t) {
        snprintf(msg, msg_size, "kernel source %s unavailable", name);
        return NULL;
    }
    memcpy(t, f->text, f->len + 1);
    *len = f->len;
    return t;
}

int clattn__kernel_source(clattn__kernel_id id, char **out, char *msg, size_t msg_size)
{
    const char *names[N_PARTS];
    char *parts[N_PARTS] = {NULL};
    size_t lens[N_PARTS] = {0};
    for (int i = 0; i < N_PRELUDE; ++i)
        names[i] = prelude[i];
    names[N_PRELUDE] = families[id].file;
    const char *dir = getenv("CLATTN_KERNEL_DIR");
    size_t total = sizeof joined_define;
    int ok = 1;
    for (int i = 0; i < N_PARTS && ok; ++i) {
        parts[i] = part_text(dir, names[i], &lens[i], msg, msg_size);
        ok = parts[i] != NULL;
        total += lens[i] + 1;
    }
    char *src = ok ? malloc(total) : NULL;
    if (ok && !src)
        snprintf(msg, msg_size, "out of host memory for kernel source");
    if (src) {
        size_t at = sizeof joined_define - 1;
        memcpy(src, joined_define, at);
        for (int i = 0; i < N_PARTS; ++i) {
            memcpy(src + at, parts[i], lens[i]);
            at += lens[i];
            src[at++] = '\n';
        }
        src[at] = '\0';
    }
    for (int i = 0; i < N_PARTS; ++i)
        free(parts[i]);
    *out = src;
    return src ? 0 : -1;
}

int clattn__build_options(const clattn__device_info *dev, const clattn__kernel_config *cfg,
                          char *buf, size_t size)
{
    /* No -cl-fast-relaxed-math / -cl-finite-math-only: masks use -INFINITY. */
    int n = snprintf(buf, size, "-cl-std=CL1.2 -DDTYPE=%d -DHEAD_DIM=%d -DHEAD_DIM_V=%d",
                     (int)cfg->dtype, cfg->head_dim, cfg->head_dim_v);
    /* Per-driver workarounds (src/device.c says why) */
    if (dev->no_reqd_wg && n >= 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, " -DCLATTN_NO_REQD_WG=1");
    clattn__tunable_id ids[CLATTN__MAX_PARAMS];
    const int np = clattn__kernel_tunables(cfg->id, ids);
    for (int i = 0; i < np && n >= 0 && (size_t)n < size; ++i)
        n += snprintf(buf + n, size - (size_t)n, " -D%s=%d", clattn__tunables[ids[i]].name,
                      clattn__cfg_get(cfg, ids[i]));
    /* Score features: each a switch of cl/common.h, absent when off, so a
     * plain problem builds exactly the plain kernels. */
    for (const clattn__feature *f = clattn__features; f->define; ++f)
        if ((cfg->features & f->bit) && n >= 0 && (size_t)n < size)
            n += snprintf(buf + n, size - (size_t)n, " -D%s=1", f->define);
    const unsigned bias_dtype = cfg->features >> CLATTN__F_BIAS_DTYPE_SHIFT & 3u;
    if ((cfg->features & CLATTN__F_BIAS) && bias_dtype && n >= 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, " -DBIAS_DTYPE=%u", bias_dtype);
    /* K/V storage and paging: absent when plain, like the features. */
    const clattn__kv_layout *kv = &cfg->kv;
    const struct {
        const char *name;
        int value;
    } kvd[] = {{"K_FMT", kv->k_fmt},   {"K_GROUP", kv->k_group}, {"K_SDT", kv->k_sdt},
               {"K_PH", kv->k_ph},     {"V_FMT", kv->v_fmt},     {"V_GROUP", kv->v_group},
               {"V_SDT", kv->v_sdt},   {"V_PH", kv->v_ph},       {"PAGED", kv->paged}};
    for (size_t i = 0; i < sizeof kvd / sizeof kvd[0]; ++i)
        if (kvd[i].value && n >= 0 && (size_t)n < size)
            n += snprintf(buf + n, size - (size_t)n, " -D%s=%d", kvd[i].name, kvd[i].value);
    const char *extra = getenv("CLATTN_BUILD_OPTIONS");
    if (extra && *extra && n >= 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, " %s", extra);
    return n >= 0 && (size_t)n < size ? 0 : -1;
}
