/* attn-tune's shapes: one input as a shape line (tool_shape_parse), as a
 * --shapes argument (tool_shapes_resolve: presets, named shapes, comma
 * lists) and as a shape file (tool_shape_file). Every accepted shape keeps
 * the tool's limits and reads back the same from its canonical text. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "shapes.h"

static int same_storage(const clattn_kv_storage *a, const clattn_kv_storage *b)
{
    return a->format == b->format && a->group == b->group && a->scale_dtype == b->scale_dtype &&
           a->per_head == b->per_head;
}

static int same_problem(const clattn_problem *a, const clattn_problem *b)
{
    return a->batch == b->batch && a->heads == b->heads && a->kv_heads == b->kv_heads &&
           a->seq_q == b->seq_q && a->seq_kv == b->seq_kv && a->head_dim == b->head_dim &&
           a->head_dim_v == b->head_dim_v && a->causal == b->causal &&
           a->windowed == b->windowed && a->window_left == b->window_left &&
           a->window_right == b->window_right && a->dtype == b->dtype &&
           same_storage(&a->k_storage, &b->k_storage) &&
           same_storage(&a->v_storage, &b->v_storage) &&
           a->paged.enabled == b->paged.enabled && a->paged.page_size == b->paged.page_size &&
           a->paged.num_pages == b->paged.num_pages &&
           a->paged.max_pages_per_seq == b->paged.max_pages_per_seq;
}

/* What clattn.h asks of a K or V storage of `dims` channels. */
static void check_storage(const clattn_kv_storage *st, int dims)
{
    const clattn_kv_format f = st->format;
    const int grouped = f == CLATTN_KV_INT8 || f == CLATTN_KV_INT4;
    const int fp8 = f == CLATTN_KV_FP8_E4M3 || f == CLATTN_KV_FP8_E5M2;
    FUZZ_CHECK(f >= CLATTN_KV_DEFAULT && f <= CLATTN_KV_FP8_E5M2, "format in range");
    FUZZ_CHECK(st->group == 0 || (grouped && (st->group == 32 || st->group == 64 ||
                                              st->group == 128) && dims % st->group == 0),
               "group of an int format, dividing the row");
    FUZZ_CHECK(st->scale_dtype == CLATTN_F32 || (st->scale_dtype == CLATTN_F16 && (grouped || fp8)),
               "scale type");
    FUZZ_CHECK(st->per_head == 0 || (st->per_head == 1 && fp8), "per_head of fp8");
    FUZZ_CHECK(f != CLATTN_KV_INT4 || dims % 2 == 0, "int4 rows even");
    FUZZ_CHECK((f != CLATTN_KV_Q8_0 && f != CLATTN_KV_Q4_0) || dims % 32 == 0,
               "ggml rows in whole blocks");
}

static void check_shape(const tool_shape *s)
{
    const clattn_problem *p = &s->p;
    int64_t q, k, v, o;
    FUZZ_CHECK(p->batch >= 1 && p->heads >= 1 && p->kv_heads >= 1 && p->seq_q >= 1 &&
                   p->seq_kv >= 1 && p->head_dim >= 1 && p->head_dim <= 256 &&
                   p->head_dim_v >= 1 && p->head_dim_v <= 256,
               "sizes in range");
    FUZZ_CHECK(p->heads % p->kv_heads == 0, "H a multiple of Hkv");
    check_storage(&p->k_storage, p->head_dim);
    check_storage(&p->v_storage, p->head_dim_v);
    if (p->paged.enabled) {
        const int ps = p->paged.page_size;
        FUZZ_CHECK(p->paged.enabled == 1 && ps >= 1 && ps <= 256 && (ps & (ps - 1)) == 0,
                   "page size");
        FUZZ_CHECK((int64_t)p->paged.max_pages_per_seq * ps >= p->seq_kv &&
                       (int64_t)(p->paged.max_pages_per_seq - 1) * ps < p->seq_kv,
                   "pages per sequence");
        FUZZ_CHECK((int64_t)p->paged.num_pages == (int64_t)p->batch * p->paged.max_pages_per_seq,
                   "pool");
    } else {
        FUZZ_CHECK(!p->paged.page_size && !p->paged.num_pages && !p->paged.max_pages_per_seq,
                   "no paging fields");
    }
    tool_shape_elements(s, &q, &k, &v, &o);
    FUZZ_CHECK(q <= (int64_t)1 << 31 && k <= (int64_t)1 << 31 && v <= (int64_t)1 << 31 &&
                   o <= (int64_t)1 << 31,
               "tensor size limit");
    char text[160], err[400];
    tool_shape back;
    tool_shape_format(s, text, sizeof text);
    FUZZ_CHECK(strlen(text) < sizeof text - 1, "canonical text fits");
    FUZZ_CHECK(tool_shape_parse(text, &back, err, sizeof err) == 1 &&
                   same_problem(&back.p, p),
               "canonical text reads back the same shape");
}

static void check_list(const tool_shape_list *list)
{
    FUZZ_CHECK(list->count <= SHAPE_LIST_MAX, "list bound");
    for (size_t i = 0; i < list->count; ++i)
        check_shape(&list->items[i]);
}

/* The scratch shape file, made once per process; on tmpfs where there is
 * one, since rewriting a file on a disk file system costs milliseconds. */
static const char *scratch_path(void)
{
    static char path[256];
    if (!path[0]) {
        const char *dirs[3] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
        int fd = -1;
        for (int i = 0; i < 3 && fd < 0; ++i) {
            if (!dirs[i] || !*dirs[i])
                continue;
            snprintf(path, sizeof path, "%s/clattn-fuzz-shapes-XXXXXX", dirs[i]);
            fd = mkstemp(path);
        }
        FUZZ_CHECK(fd >= 0, "scratch file");
        close(fd);
    }
    return path;
}

static void cleanup(void) { unlink(scratch_path()); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tool_shape_list list; /* large: not on the stack */
    static int registered;
    char *text = malloc(size + 1);
    FUZZ_CHECK(text != NULL, "malloc");
    memcpy(text, data, size);
    text[size] = '\0';

    tool_shape s;
    char err[400];
    int got = tool_shape_parse(text, &s, err, sizeof err);
    FUZZ_CHECK(got >= -1 && got <= 1, "parse result");
    FUZZ_CHECK(strlen(err) < sizeof err, "message fits");
    if (got == 1)
        check_shape(&s);
    if (got < 0)
        FUZZ_CHECK(err[0], "an error says what is wrong");

    /* As --shapes: files are the next part's business, and a name that exists
     * here would make the run depend on the directory. */
    struct stat st;
    if (stat(text, &st) != 0) {
        list.count = 0;
        if (tool_shapes_resolve(text, 1, &list))
            check_list(&list);
        list.count = 0;
        if (tool_shapes_resolve(text, 0, &list))
            check_list(&list);
    }

    const char *path = scratch_path();
    if (!registered) {
        atexit(cleanup);
        registered = 1;
    }
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f && fwrite(data, 1, size, f) == size && fclose(f) == 0, "scratch write");
    list.count = 0;
    if (tool_shape_file(path, &list)) {
        FUZZ_CHECK(list.count > 0, "an accepted file has shapes");
        check_list(&list);
    }
    free(text);
    return 0;
}
