/*
 * The small API surface: status strings, version, options, contexts, and the
 * capability query.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "harness.h"
#include "param_spy.h"

typedef struct log_record {
    int count[4];
    int other;
    char last[256];
} log_record;

static void record_log(int level, const char *message, void *user)
{
    log_record *r = user;
    if (level >= 0 && level < 4)
        r->count[level]++;
    else
        r->other++;
    snprintf(r->last, sizeof r->last, "%s", message ? message : "(NULL)");
}

void case_api_basics(void)
{
    /* status strings: exactly the table's, distinct, never NULL */
    static const struct {
        clattn_status s;
        const char *text;
    } table[] = {
#define T_STATUS_ROW(name, value, text) {name, text},
        CLATTN_STATUS_TABLE(T_STATUS_ROW)
#undef T_STATUS_ROW
    };
    const int n = (int)(sizeof table / sizeof table[0]);
    for (int i = 0; i < n; i++) {
        const char *s = clattn_status_string(table[i].s);
        T_CHECK(s && strcmp(s, table[i].text) == 0,
                "clattn_status_string(%d) = \"%s\", expected \"%s\"", (int)table[i].s,
                s ? s : "(NULL)", table[i].text);
        for (int j = 0; j < i && s; j++) {
            const char *o = clattn_status_string(table[j].s);
            T_CHECK(!o || strcmp(s, o) != 0, "statuses %d and %d share the string \"%s\"",
                    (int)table[i].s, (int)table[j].s, s);
        }
    }
    T_CHECK(clattn_status_string((clattn_status)99) != NULL, "clattn_status_string(99) is NULL");
    T_CHECK(clattn_status_string((clattn_status)-1) != NULL, "clattn_status_string(-1) is NULL");
    t_log("ok   %d status strings", n);

    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", CLATTN_VERSION_MAJOR, CLATTN_VERSION_MINOR,
             CLATTN_VERSION_PATCH);
    const char *v = clattn_version();
    T_CHECK(v && strcmp(v, want) == 0, "clattn_version() = \"%s\", the header says \"%s\"",
            v ? v : "(NULL)", want);
    t_log("ok   version %s", v ? v : "(NULL)");

    clattn_context_destroy(NULL);

    clattn_options init = CLATTN_OPTIONS_INIT, o;
    memset(&o, 0x5a, sizeof o);
    T_CHECK(clattn_options_init(&o) == CLATTN_OK, "clattn_options_init failed");
    T_CHECK(o.platform == init.platform && o.device == init.device &&
                o.cache_dir == init.cache_dir && o.log == init.log &&
                o.log_user_data == init.log_user_data &&
                o.max_scratch_bytes == init.max_scratch_bytes,
            "clattn_options_init differs from CLATTN_OPTIONS_INIT");

    /* a context of its own making: in-order queue with profiling */
    clattn_context *ctx = t_context();
    if (ctx) {
        const char *e = clattn_last_error(ctx);
        T_CHECK(e && e[0] == '\0', "clattn_last_error on a fresh context is \"%s\"",
                e ? e : "(NULL)");
        T_CHECK(clattn_context_get_cl(ctx, NULL, NULL, NULL) == CLATTN_OK,
                "clattn_context_get_cl with all outputs NULL failed");
        cl_context c = NULL;
        cl_command_queue q = NULL;
        cl_device_id d = NULL;
        T_CHECK(clattn_context_get_cl(ctx, &c, &q, &d) == CLATTN_OK && c && q && d,
                "clattn_context_get_cl gives NULL objects");
        if (q) {
            cl_command_queue_properties props = 0;
            T_CL(clGetCommandQueueInfo(q, CL_QUEUE_PROPERTIES, sizeof props, &props, NULL));
            T_CHECK(props & CL_QUEUE_PROFILING_ENABLE, "the context's queue has no profiling");
            T_CHECK(!(props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE),
                    "the context's own queue is out of order");
            cl_device_id qd = NULL;
            cl_context qc = NULL;
            T_CL(clGetCommandQueueInfo(q, CL_QUEUE_DEVICE, sizeof qd, &qd, NULL));
            T_CL(clGetCommandQueueInfo(q, CL_QUEUE_CONTEXT, sizeof qc, &qc, NULL));
            T_CHECK(qd == d && qc == c, "queue, context and device of the context disagree");
        }
        clattn_context_destroy(ctx);
        t_log("ok   context create / get_cl / destroy");
    }
    T_CHECK(clattn_context_get_cl(NULL, NULL, NULL, NULL) != CLATTN_OK,
            "clattn_context_get_cl(NULL) returns OK");
    T_CHECK(clattn_context_create(NULL, NULL) != CLATTN_OK,
            "clattn_context_create(NULL, NULL) returns OK");
    T_CHECK(clattn_context_create_from_queue(NULL, NULL, &ctx) != CLATTN_OK,
            "clattn_context_create_from_queue(NULL queue) returns OK");

    /* options: no disk cache, and a logger that sees failures */
    log_record rec;
    memset(&rec, 0, sizeof rec);
    clattn_options opts = CLATTN_OPTIONS_INIT;
    opts.cache_dir = "off";
    opts.log = record_log;
    opts.log_user_data = &rec;
    ctx = NULL;
    clattn_status st = clattn_context_create(&opts, &ctx);
    T_CHECK(st == CLATTN_OK && ctx, "clattn_context_create(cache_dir off, log) -> %s",
            clattn_status_string(st));
    if (ctx) {
        clattn_problem p;
        memset(&p, 0, sizeof p);
        p.batch = 1;
        p.heads = 1;
        p.seq_q = 3;
        p.seq_kv = 3;
        p.head_dim = 8;
        p.dtype = CLATTN_F32;
        t_tensors t;
        if (t_tensors_init(&t, &p, 0, 0xa9140u) == 0) {
            t_check_run(ctx, "cache_off", &t, 1);
            t_tensors_free(&t);
        }
        p.batch = 0;
        st = clattn_supports(ctx, &p);
        T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT, "batch 0: clattn_supports -> %s",
                clattn_status_string(st));
        T_CHECK(rec.count[CLATTN_LOG_ERROR] + rec.count[CLATTN_LOG_WARNING] > 0,
                "the log callback heard nothing of a failed call (header: it receives every "
                "message the library emits); last_error \"%s\"", clattn_last_error(ctx));
        T_CHECK(rec.other == 0, "the log callback got %d messages with a level outside 0..3",
                rec.other);
        t_log("ok   log callback: %d error, %d warning messages; last \"%s\"",
              rec.count[CLATTN_LOG_ERROR], rec.count[CLATTN_LOG_WARNING], rec.last);
        clattn_context_destroy(ctx);
    }

    /* a device index that does not exist: failure, *out NULL, the reason logged */
    memset(&rec, 0, sizeof rec);
    opts.platform = 0;
    opts.device = 999;
    ctx = (clattn_context *)&rec; /* must be overwritten with NULL */
    st = clattn_context_create(&opts, &ctx);
    T_CHECK(st != CLATTN_OK, "clattn_context_create(device 999) returns OK");
    if (st != CLATTN_OK) {
        T_CHECK(ctx == NULL, "clattn_context_create failed but *out is not NULL");
        T_CHECK(rec.count[CLATTN_LOG_ERROR] + rec.count[CLATTN_LOG_WARNING] > 0,
                "clattn_context_create(device 999) failed without logging the reason");
        t_log("ok   device 999 -> %s; logged \"%s\"", clattn_status_string(st), rec.last);
    } else if (ctx && ctx != (clattn_context *)&rec) {
        clattn_context_destroy(ctx);
    }
}

void case_supports(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    static const clattn_dtype dts[3] = {CLATTN_F32, CLATTN_F16, CLATTN_BF16};
    static const int dims[5][2] = {{1, 1}, {64, 64}, {256, 256}, {256, 1}, {17, 200}};
    int unsupported = 0, total = 0;
    /* clattn_supports may build kernels to know: every head size in f32, two in the others */
    for (int pi = 0; pi < 4; pi++)
        for (int di = 0; di < 3; di++)
            for (int hd = 0; hd < 5; hd++) {
                if (di > 0 && hd != 1 + di)
                    continue;
                clattn_problem p;
                memset(&p, 0, sizeof p);
                p.batch = 4;
                p.heads = 8;
                p.kv_heads = 2;
                p.seq_q = hd == 2 ? 1 : 4096;
                p.seq_kv = 4096;
                p.head_dim = dims[hd][0];
                p.head_dim_v = dims[hd][1];
                p.dtype = dts[di];
                p.path = t_all_paths[pi];
                p.causal = hd % 3;
                clattn_status st = clattn_supports(ctx, &p);
                total++;
                T_CHECK(st == CLATTN_OK || st == CLATTN_ERR_UNSUPPORTED,
                        "valid problem (path %s, %s, D%d/%d): clattn_supports -> %s: %s",
                        t_path_name(p.path), t_dtype_name(p.dtype), p.head_dim, p.head_dim_v,
                        clattn_status_string(st), clattn_last_error(ctx));
                if (st == CLATTN_ERR_UNSUPPORTED) {
                    unsupported++;
                    t_log("note: unsupported here: path %s %s D%d/%d Sq%d: %s",
                          t_path_name(p.path), t_dtype_name(p.dtype), p.head_dim, p.head_dim_v,
                          p.seq_q, clattn_last_error(ctx));
                }
            }
    t_log("ok   %d valid problems: %d supported, %d unsupported on this device", total,
          total - unsupported, unsupported);

    clattn_problem bad;
    memset(&bad, 0, sizeof bad);
    bad.batch = 1;
    bad.heads = 3;
    bad.kv_heads = 2;
    bad.seq_q = 4;
    bad.seq_kv = 4;
    bad.head_dim = 64;
    clattn_status st = clattn_supports(ctx, &bad);
    T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT, "heads 3 / kv_heads 2: clattn_supports -> %s",
            clattn_status_string(st));
    bad.kv_heads = 1;
    bad.head_dim = 513; /* 1..512 or 576 since 1.0 */
    st = clattn_supports(ctx, &bad);
    T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT, "head_dim 513: clattn_supports -> %s",
            clattn_status_string(st));
    t_log("ok   invalid problems refused by clattn_supports");
    clattn_context_destroy(ctx);
}

/* CLATTN_PARAMS that does not say what it means is refused, never read as a
 * default run: a misspelt or renamed tunable, a name that cannot be forced,
 * a value out of range or not a number. Each call fails with
 * INVALID_ARGUMENT and a message naming the setting, and leaves O and the
 * LSE untouched; a valid setting works and reaches the kernel. */
void case_params_errors(void)
{
    static const struct {
        const char *params, *word;
    } bad[] = {
        {"BLOCK_MM=3", "BLOCK_MM"},           /* unknown name */
        {"FUSED_VEC=0,BLOK_N=5", "BLOK_N"},    /* unknown after a good one */
        {"SPLIT_KV=1", "SPLIT_KV"},            /* set by the path, not forcible */
        {"BLOCK_M", "BLOCK_M"},                /* no value */
        {"BLOCK_M=0", "BLOCK_M"},              /* below its range */
        {"BLOCK_M=3x", "BLOCK_M"},             /* not a number */
    };
    const char *saved = getenv("CLATTN_PARAMS");
    char keep[512] = "";
    if (saved)
        snprintf(keep, sizeof keep, "%s", saved);
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = 1;
    p.heads = 2;
    p.seq_q = 7;
    p.seq_kv = 11;
    p.head_dim = 16;
    p.dtype = CLATTN_F32;
    p.path = CLATTN_PATH_FUSED;
    t_tensors t;
    if (t_tensors_init(&t, &p, T_WITH_LSE, 0xba4a3u) != 0) {
        clattn_context_destroy(ctx);
        return;
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("CLATTN_PARAMS", bad[i].params, 1);
        for (int host = 0; host < 2; host++) {
            t_tensors_poison(&t);
            clattn_status st = host ? t_run_host(ctx, &t) : t_run_device(ctx, &t);
            const char *msg = clattn_last_error(ctx);
            T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT && msg && strstr(msg, bad[i].word),
                    "CLATTN_PARAMS=%s (%s): -> %s, message \"%s\" (want invalid argument "
                    "naming %s)", bad[i].params, host ? "host" : "device",
                    clattn_status_string(st), msg ? msg : "(NULL)", bad[i].word);
            T_CHECK(t_same_bytes(t.o, t.o_init, (size_t)t.o_alloc * t.esz),
                    "CLATTN_PARAMS=%s (%s): the refused call wrote O", bad[i].params,
                    host ? "host" : "device");
            t_log("ok   CLATTN_PARAMS=%-22s (%s) -> %s \"%s\"", bad[i].params,
                  host ? "host" : "device", clattn_status_string(st), msg ? msg : "");
        }
    }
    setenv("CLATTN_PARAMS", "FUSED_VEC=0,BLOCK_M=3,BLOCK_N=5", 1);
    t_spy_reset();
    t_check_run(ctx, "forced BLOCK_M=3,BLOCK_N=5", &t, 0);
    t_spy_check_params("FUSED_VEC=0,BLOCK_M=3,BLOCK_N=5", "params_errors");
    if (saved)
        setenv("CLATTN_PARAMS", keep, 1);
    else
        unsetenv("CLATTN_PARAMS");
    t_tensors_free(&t);
    clattn_context_destroy(ctx);
}

/* ==== plan_native_width ===================================================
 * Kernel shapes follow the CPU's vector registers: what the device's name
 * says PoCL compiles for where it names an LLVM CPU, else the native width
 * the device reports. This device, given the names and widths below through
 * an interposed clGetDeviceInfo, gets: three-stage QK, softmax and AV
 * kernels in vectors of the register's width (four AV vectors a row at
 * head_dim_v 64); and the rows-in-lanes fused kernel with 16 rows in lanes,
 * scoring keys and updating value dims 4 at a time on AVX2 (a float16 is two
 * of its 16 registers), 8 at a time on AVX-512, 4 at a time on AArch64 (four
 * of its 32 registers); and decode's key-vector kernel with as many keys a
 * vector as a register holds. The third and fourth rows are PoCL built for
 * haswell on an AVX-512 host, which still reports 16: the name decides.
 * Results are checked against the reference each time. */
void case_plan_native_width(void)
{
    static const struct {
        const char *name; /* the CL_DEVICE_NAME it reports */
        cl_uint width;
        clattn_path path;
        const char *expect;
    } runs[] = {
        {"pthread-haswell", 8, CLATTN_PATH_THREE_STAGE, "QK_VEC=8,SM_VEC=8,AV_VEC=8,AV_CV=4"},
        {"pthread-skylake-avx512", 16, CLATTN_PATH_THREE_STAGE,
         "QK_VEC=16,SM_VEC=16,AV_VEC=16,AV_CV=4"},
        {"pthread-haswell-AMD EPYC", 16, CLATTN_PATH_THREE_STAGE,
         "QK_VEC=8,SM_VEC=8,AV_VEC=8,AV_CV=4"},
        {"pthread-haswell-AMD EPYC", 16, CLATTN_PATH_FUSED, "FUSED_VEC=2,FL_LANES=16,FL_KB=4,FL_DB=4"},
        {"pthread-haswell", 8, CLATTN_PATH_FUSED, "FUSED_VEC=2,FL_LANES=16,FL_KB=4,FL_DB=4"},
        {"cpu-znver4-AMD EPYC", 16, CLATTN_PATH_FUSED, "FUSED_VEC=2,FL_LANES=16,FL_KB=8,FL_DB=8"},
        {"Vendor Q CPU model 7", 8, CLATTN_PATH_FUSED, "FUSED_VEC=2,FL_LANES=16,FL_KB=4,FL_DB=4"},
        {"Vendor Q CPU model 9", 16, CLATTN_PATH_FUSED, "FUSED_VEC=2,FL_LANES=16,FL_KB=8,FL_DB=8"},
        {"cpu-neoverse-n1", 4, CLATTN_PATH_FUSED, "FUSED_VEC=2,FL_LANES=16,FL_KB=4,FL_DB=4"},
        /* decode (one query row): the key-vector kernel, keys in a register */
        {"pthread-haswell-AMD EPYC", 16, CLATTN_PATH_FUSED, "FUSED_VEC=1,FV_VEC=8"},
        {"pthread-skylake-avx512", 16, CLATTN_PATH_FUSED, "FUSED_VEC=1,FV_VEC=16"}};
    static const char *const kernels[3][3] = {{"attn_qk", "attn_softmax", "attn_av"},
                                              {"attn_fwd_fused_lanes", NULL, NULL},
                                              {"attn_fwd_fused_vec", NULL, NULL}};
    const char *keep = getenv("CLATTN_PARAMS");
    if (keep && *keep) {
        t_skip("plan_native_width: CLATTN_PARAMS is set (%s): the defaults are not in use", keep);
        return;
    }
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = 1;
    p.heads = 2;
    p.seq_q = 67;
    p.seq_kv = 45;
    p.head_dim = 64;
    p.dtype = CLATTN_F32;
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        p.path = runs[i].path;
        p.seq_q = strstr(runs[i].expect, "FV_VEC") ? 1 : 67;
        t_tensors t;
        if (t_tensors_init(&t, &p, T_WITH_LSE, 0x7a71eu + i) != 0)
            return;
        t_spy_native_float(runs[i].width);
        t_spy_device_name(runs[i].name);
        clattn_context *ctx = t_context();
        t_spy_native_float(0);
        t_spy_device_name(NULL);
        if (!ctx) {
            t_tensors_free(&t);
            return;
        }
        cl_device_id dev = NULL;
        cl_device_type type = 0;
        if (clattn_context_get_cl(ctx, NULL, NULL, &dev) != CLATTN_OK ||
            clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof type, &type, NULL) != CL_SUCCESS ||
            (type & CL_DEVICE_TYPE_GPU) || !(type & CL_DEVICE_TYPE_CPU)) {
            /* src/device.c's order: a device that says GPU is planned as one */
            t_skip("plan_native_width: not planned as a CPU (the rules are for CPUs)");
            clattn_context_destroy(ctx);
            t_tensors_free(&t);
            return;
        }
        t_spy_reset();
        char label[128];
        snprintf(label, sizeof label, "%s, '%s', native width %u",
                 runs[i].path == CLATTN_PATH_FUSED ? "fused" : "three-stage", runs[i].name,
                 runs[i].width);
        t_check_run(ctx, label, &t, 0);
        const char *const *want =
            kernels[runs[i].path != CLATTN_PATH_FUSED ? 0 : p.seq_q > 1 ? 1 : 2];
        for (int k = 0; k < 3 && want[k]; k++)
            T_CHECK(t_spy_builds_of(want[k]) > 0, "%s: %s was not built", label, want[k]);
        t_spy_check_params(runs[i].expect, label);
        t_log("ok   %s: %s", label, runs[i].expect);
        clattn_context_destroy(ctx);
        t_tensors_free(&t);
    }
}

/* Decode where AUTO picks split-KV but one partition already fills the
 * device (batch * kv_heads groups >= 4 per compute unit, src/plan.c): the
 * fused kernel writes O and LSE itself and no combine kernel is built or
 * run; asking for SPLIT_KV still runs the combine. Both against the
 * reference, with kv_lens, sinks, bottom-right causal and the LSE. */
void case_decode_one_split(void)
{
    const char *keep = getenv("CLATTN_PARAMS");
    if (keep && *keep) {
        t_skip("decode_one_split: CLATTN_PARAMS is set (%s): the defaults are not in use", keep);
        return;
    }
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    cl_device_id dev = NULL;
    cl_uint cus = 0;
    cl_device_type type = 0;
    if (clattn_context_get_cl(ctx, NULL, NULL, &dev) != CLATTN_OK ||
        clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cus, &cus, NULL) != CL_SUCCESS ||
        clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof type, &type, NULL) != CL_SUCCESS) {
        T_FAIL("decode_one_split: device queries failed");
        clattn_context_destroy(ctx);
        return;
    }
    clattn_context_destroy(ctx);
    const int cpu = (type & CL_DEVICE_TYPE_CPU) && !(type & CL_DEVICE_TYPE_GPU);
    static const clattn_dtype dts[2] = {CLATTN_F32, CLATTN_F16};
    for (int di = 0; di < 2; di++)
        for (int forced = 0; forced < 2; forced++) {
            clattn_problem p;
            memset(&p, 0, sizeof p);
            p.batch = (int)(cus < 1 ? 1 : cus > 16 ? 16 : cus);
            p.kv_heads = 4;
            p.heads = 8;
            p.seq_q = 1 + di;
            p.seq_kv = 300;
            p.head_dim = 64;
            p.dtype = dts[di];
            p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
            p.sinks = 1;
            p.path = forced ? CLATTN_PATH_SPLIT_KV : CLATTN_PATH_AUTO;
            t_tensors t;
            if (t_tensors_init(&t, &p, T_WITH_LSE | T_WITH_KV_LENS | T_WITH_SINKS,
                               0xd5117u + (uint64_t)(di * 2 + forced)) != 0)
                return;
            ctx = t_context();
            if (!ctx) {
                t_tensors_free(&t);
                return;
            }
            t_spy_reset();
            char label[128];
            snprintf(label, sizeof label, "decode B%d Hkv%d Sq%d %s, %s path", p.batch,
                     p.kv_heads, p.seq_q, t_dtype_name(p.dtype), forced ? "split_kv" : "auto");
            t_check_run(ctx, label, &t, 0);
            const int combines = t_spy_builds_of("attn_splitkv_combine");
            if (forced)
                T_CHECK(combines > 0, "%s: the combine kernel was not built", label);
            else if (cpu && cus <= 16)
                T_CHECK(combines == 0, "%s: one partition fills the device, yet the combine "
                        "kernel was built (%d builds)", label, combines);
            t_log("     %s: %d combine builds", label, combines);
            clattn_context_destroy(ctx);
            t_tensors_free(&t);
        }
}
