/* Shared pieces of the fault and soak tests (see fx.h). */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700 /* nftw */
#include "fx.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int fx_long(void)
{
    const char *v = getenv("CLATTN_LONG");
    return v && *v && strcmp(v, "0") != 0;
}

double fx_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(path);
}

void fx_remove_tree(const char *path)
{
    if (getenv("CLATTN_TEST_KEEP"))
        return;
    nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char work[1024];

void fx_cleanup(void)
{
    if (work[0])
        fx_remove_tree(work);
}

void fx_fresh_dir(const char *name, char *buf, size_t size)
{
    if (!work[0]) {
        const char *w = getenv("CLATTN_FAULT_WORK");
        if (w && *w)
            snprintf(work, sizeof work, "%s/run.%ld", w, (long)getpid());
        else
            snprintf(work, sizeof work, "/tmp/clattn-faults.%ld", (long)getpid());
        if (w && *w)
            mkdir(w, 0700);
        fx_remove_tree(work);
        if (mkdir(work, 0700) != 0 && errno != EEXIST) {
            T_FAIL("mkdir %s: %s", work, strerror(errno));
        }
    }
    snprintf(buf, size, "%s/%s", work, name);
    fx_remove_tree(buf);
    if (mkdir(buf, 0700) != 0)
        T_FAIL("mkdir %s: %s", buf, strerror(errno));
}

void fx_log_fn(int level, const char *message, void *user_data)
{
    fx_log *log = user_data;
    if (level == CLATTN_LOG_ERROR) {
        log->errors++;
        snprintf(log->last, sizeof log->last, "%s", message);
    } else if (level == CLATTN_LOG_WARNING) {
        log->warnings++;
    }
    if (getenv("CLATTN_TEST_VERBOSE"))
        printf("  [clattn %d] %.300s\n", level, message);
}

static int changed(const t_tensors *t, const void *o_before, const float *lse_before)
{
    int c = !t_same_bytes(t->o, o_before, (size_t)t->o_alloc * t->esz);
    if (t->lse)
        c |= !t_same_bytes(t->lse, lse_before, sizeof(float) * (size_t)(t->lse_n + T_GUARD));
    return c;
}

/* O elements outside the view (gaps between rows and heads, the guard) and
 * LSE guard elements that differ from before the run (-1: no memory to
 * tell). */
static long outside_changed(const t_tensors *t, const void *o_before, const float *lse_before)
{
    const clattn_problem *n = &t->n;
    unsigned char *in = calloc((size_t)t->o_alloc, 1);
    if (!in)
        return -1;
    const int tokens = n->varlen ? n->total_q : n->seq_q, batches = n->varlen ? 1 : n->batch;
    for (int b = 0; b < batches; b++)
        for (int h = 0; h < n->heads; h++)
            for (int i = 0; i < tokens; i++)
                for (int d = 0; d < n->head_dim_v; d++)
                    in[b * n->o_strides.batch + h * n->o_strides.head + i * n->o_strides.seq + d] =
                        1;
    long c = 0;
    for (int64_t e = 0; e < t->o_alloc; e++)
        c += !in[e] && memcmp((const char *)t->o + e * t->esz,
                              (const char *)o_before + e * t->esz, t->esz) != 0;
    free(in);
    for (int64_t r = t->lse_n; t->lse && lse_before && r < t->lse_n + T_GUARD; r++)
        c += memcmp(&t->lse[r], &lse_before[r], sizeof(float)) != 0;
    return c;
}

clattn_status fx_forward(clattn_context *ctx, t_tensors *t, fx_api api, fx_touched *touched)
{
    t_tensors_poison(t);
    const size_t lse_bytes = t->lse ? sizeof(float) * (size_t)(t->lse_n + T_GUARD) : 0;
    float *lse_before = t->lse ? malloc(lse_bytes) : NULL;
    if (lse_before)
        memcpy(lse_before, t->lse, lse_bytes);
    clattn_status st;
    if (api == FX_HOST) {
        clattn_host_buffers hb = t_tensors_host(t);
        fl_arm(1);
        st = clattn_forward_host(ctx, &t->p, &hb);
        fl_arm(0);
    } else {
        cl_context c = NULL;
        cl_command_queue q = NULL;
        clattn_context_get_cl(ctx, &c, &q, NULL);
        clattn_buffers b;
        cl_int err = t_dev_create(c, t, &b);
        if (err != CL_SUCCESS) {
            T_FAIL("test buffers: clCreateBuffer -> %d", (int)err);
            free(lse_before);
            return CLATTN_ERR_OPENCL;
        }
        cl_event done = NULL;
        fl_arm(1);
        st = clattn_forward(ctx, &t->p, &b, 0, NULL, &done);
        fl_arm(0);
        if (st == CLATTN_OK) {
            T_CHECK(done != NULL, "clattn_forward OK without a done event");
            if (done) {
                T_CL(clWaitForEvents(1, &done));
                clReleaseEvent(done);
            }
        } else {
            T_CHECK(done == NULL, "clattn_forward failed but left *done = %p", (void *)done);
            /* Whatever it did enqueue must finish before the buffers go. */
            T_CL(clFinish(q));
        }
        T_CL(t_dev_read(q, &b, t));
        t_dev_release(&b);
    }
    if (touched) {
        touched->outputs = changed(t, t->o_init, lse_before);
        touched->outside = outside_changed(t, t->o_init, lse_before);
    }
    free(lse_before);
    return st;
}

int fx_forward_ok(clattn_context *ctx, t_tensors *t, fx_api api, const char *label)
{
    int before = t_failures;
    clattn_status st = fx_forward(ctx, t, api, NULL);
    if (st != CLATTN_OK) {
        T_FAIL("%s: forward -> %s: %s", label, clattn_status_string(st), clattn_last_error(ctx));
        return 0;
    }
    t_result r = t_verify(label, t, t_tolerance_for(t->p.dtype));
    (void)r;
    return t_failures == before;
}

long fx_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = -1;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2)
            resident = -1;
        fclose(f);
    }
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

int fx_cl_create(fx_cl *cl, int out_of_order)
{
    memset(cl, 0, sizeof *cl);
    clattn_context *probe = NULL;
    if (clattn_context_create(NULL, &probe) != CLATTN_OK)
        return -1;
    clattn_context_get_cl(probe, NULL, NULL, &cl->device);
    clattn_context_destroy(probe);
    cl_int err;
    cl->ctx = clCreateContext(NULL, 1, &cl->device, NULL, NULL, &err);
    if (err != CL_SUCCESS)
        return -1;
    /* No profiling: the tuner then makes a queue of its own. */
    cl->queue = clCreateCommandQueue(
        cl->ctx, cl->device, out_of_order ? CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE : 0, &err);
    if (err != CL_SUCCESS) {
        clReleaseContext(cl->ctx);
        return -1;
    }
    return 0;
}

void fx_cl_release(fx_cl *cl)
{
    if (cl->queue)
        clReleaseCommandQueue(cl->queue);
    if (cl->ctx)
        clReleaseContext(cl->ctx);
    memset(cl, 0, sizeof *cl);
}
