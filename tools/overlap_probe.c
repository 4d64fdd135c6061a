/* overlap_probe: how much of a CPU's memory time its own arithmetic hides.
 *
 * Decode is judged against the device's read bandwidth (attn-kv-bench's
 * "% read"), which assumes the cores can compute while their bytes arrive.
 * This probe measures that assumption on the host, without OpenCL: worker
 * threads (one pinned to each CPU) stream rows laid out as D1's K and V (32
 * heads x 4096 keys x 128 bytes each, 16-key tiles, the K rows of a tile
 * then its V rows), doing a fixed number of 16-lane FMAs per 64-byte line.
 * Per amount of work it times the arithmetic alone (a few tiles that stay
 * in cache), the memory alone (no arithmetic, no software prefetch) and the
 * two together under several software-prefetch schemes, and prints how much
 * of the shorter of the two the streamed run hid:
 *
 *   hidden = (memory + arithmetic - streamed) / min(memory, arithmetic)
 *
 * 1 is perfect overlap (the streamed run as long as the longer part), 0 is
 * none (as long as both in a row). Above 1, the scheme's prefetches also
 * read faster than the memory-alone run, which has none.
 *
 *   overlap_probe [--threads N] [--work 4,8,12,16,24] [--ahead 2] [--reps 9]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HEADS 32
#define KEYS 4096
#define ROW 128
#define TILE 16
#define TILE_BYTES (TILE * ROW)
#define LINE 64
/* the in-cache run re-reads this many tiles of its heads: 64 KiB of K and
 * V, inside any L2 */
#define RESIDENT_TILES 16
#define MAX_THREADS 64

typedef float v16 __attribute__((vector_size(64)));

enum scheme { NONE, BURST, SPREAD, HALF, PAGE, TOUCH, N_SCHEMES };
static const char *const scheme_name[N_SCHEMES] = {"none", "burst", "spread",
                                                   "half", "page",  "touch"};
static const char *const scheme_doc[N_SCHEMES] = {
    "no software prefetch",
    "every line of the tile `ahead` tiles on, at the start of a tile",
    "one line of that tile per line computed",
    "two lines (K's and V's) per K line computed, none while computing V",
    "the first line of each 4 KiB page, `ahead` tiles on",
    "plain loads of that tile's lines, at the start of a tile"};

typedef struct {
    const unsigned char *k, *v;
    int work, ahead, resident, nthreads;
    enum scheme sch;
} job;

static job g_job;
static volatile int g_gen;
static int g_done[MAX_THREADS];
/* where the sums go, so the compiler keeps the loads and the arithmetic */
static volatile float g_sink[MAX_THREADS];

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The work of thread `self`: its share of the heads, tile by tile. */
static void run_share(int self)
{
    const job *j = &g_job;
    v16 acc[8];
    for (int i = 0; i < 8; ++i)
        acc[i] = (v16){0};
    const v16 c = (v16){0} + 0.999f;
    unsigned touched = 0;
    for (int h = self; h < HEADS; h += j->nthreads) {
        const unsigned char *kh = j->k + (size_t)h * KEYS * ROW;
        const unsigned char *vh = j->v + (size_t)h * KEYS * ROW;
        const int ntiles = j->resident ? RESIDENT_TILES : KEYS / TILE;
        const int passes = j->resident ? KEYS / TILE / RESIDENT_TILES : 1;
        for (int p = 0; p < passes; ++p)
            for (int t = 0; t < ntiles; ++t) {
                const unsigned char *kt = kh + (size_t)t * TILE_BYTES;
                const unsigned char *vt = vh + (size_t)t * TILE_BYTES;
                const int ta = t + j->ahead;
                const int ahead = !j->resident && ta < ntiles;
                const unsigned char *ka = kh + (size_t)ta * TILE_BYTES;
                const unsigned char *va = vh + (size_t)ta * TILE_BYTES;
                if (ahead && j->sch == BURST)
                    for (int l = 0; l < TILE_BYTES; l += LINE) {
                        __builtin_prefetch(ka + l, 0, 2);
                        __builtin_prefetch(va + l, 0, 2);
                    }
                if (ahead && j->sch == PAGE && (size_t)ta * TILE_BYTES % 4096 == 0) {
                    __builtin_prefetch(ka, 0, 2);
                    __builtin_prefetch(va, 0, 2);
                }
                if (ahead && j->sch == TOUCH)
                    for (int l = 0; l < TILE_BYTES; l += LINE)
                        touched |= *(const volatile unsigned char *)(ka + l) |
                                   *(const volatile unsigned char *)(va + l);
                for (int s = 0; s < 2; ++s) {
                    const unsigned char *b = s ? vt : kt, *ba = s ? va : ka;
                    for (int l = 0; l < TILE_BYTES; l += LINE) {
                        if (ahead && j->sch == SPREAD)
                            __builtin_prefetch(ba + l, 0, 2);
                        if (ahead && j->sch == HALF && !s) {
                            __builtin_prefetch(ka + l, 0, 2);
                            __builtin_prefetch(va + l, 0, 2);
                        }
                        v16 x;
                        memcpy(&x, b + l, sizeof x);
                        /* work FMAs on 8 independent chains (enough for
                         * two FMA ports of 4 cycles' latency) */
                        for (int r = 0; r < j->work; r += 8) {
                            const int n = j->work - r;
#pragma GCC unroll 8
                            for (int i = 0; i < 8; ++i)
                                if (i < n)
                                    acc[i] = x * acc[i] + c;
                        }
                        if (!j->work)
                            acc[0] += x;
                    }
                }
            }
    }
    v16 s = acc[0];
    for (int i = 1; i < 8; ++i)
        s += acc[i];
    g_sink[self] = s[0] + s[15] + (float)touched;
}

static void pin(pthread_t t, int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)pthread_setaffinity_np(t, sizeof set, &set); /* unpinned still runs */
}

/* Workers wait spinning, so a run does not time the wake-up of an idle
 * vCPU (measured: an unpinned second thread could start 1-3 ms late). */
static void *worker(void *arg)
{
    const int self = (int)(long)arg;
    int seen = 0;
    for (;;) {
        int g;
        while ((g = __atomic_load_n(&g_gen, __ATOMIC_ACQUIRE)) == seen)
            sched_yield();
        if (g < 0)
            return NULL;
        seen = g;
        run_share(self);
        __atomic_store_n(&g_done[self], g, __ATOMIC_RELEASE);
    }
}

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median ms of reps runs of the current job, the caches emptied first. */
static double time_job(int reps, const unsigned char *flush, size_t flush_bytes)
{
    static int gen;
    double t[64];
    for (int r = 0; r < reps; ++r) {
        unsigned long sum = 0;
        for (size_t i = 0; i < flush_bytes; i += LINE)
            sum += flush[i];
        g_sink[0] += (float)(sum & 1);
        const double a = now();
        __atomic_store_n(&g_gen, ++gen, __ATOMIC_RELEASE);
        run_share(0);
        for (int w = 1; w < g_job.nthreads; ++w)
            while (__atomic_load_n(&g_done[w], __ATOMIC_ACQUIRE) != gen)
                ;
        t[r] = 1e3 * (now() - a);
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_d);
    return t[reps / 2];
}

static void usage(FILE *f)
{
    fprintf(f, "usage: overlap_probe [--threads N] [--work 4,8,12,16,24] [--ahead 2] "
               "[--reps 9]\n"
               "  --threads  worker threads, one pinned to each CPU (default: the online CPUs)\n"
               "  --work     16-lane FMAs per 64-byte line (a list)\n"
               "  --ahead    how many 16-key tiles ahead the prefetch schemes reach\n"
               "  --reps     timed runs per measurement (the median is printed)\n"
               "schemes:\n");
    for (int s = 1; s < N_SCHEMES; ++s)
        fprintf(f, "  %-7s %s\n", scheme_name[s], scheme_doc[s]);
}

int main(int argc, char **argv)
{
    int nthreads = (int)sysconf(_SC_NPROCESSORS_ONLN), ahead = 2, reps = 9;
    const char *works = "4,8,12,16,24";
    for (int i = 1; i < argc; ++i) {
        const int more = i + 1 < argc;
        if (!strcmp(argv[i], "--threads") && more)
            nthreads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--work") && more)
            works = argv[++i];
        else if (!strcmp(argv[i], "--ahead") && more)
            ahead = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && more)
            reps = atoi(argv[++i]);
        else {
            usage(strcmp(argv[i], "--help") ? stderr : stdout);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (nthreads < 1 || nthreads > MAX_THREADS || ahead < 1 || ahead > 64 || reps < 1 ||
        reps > 64) {
        fprintf(stderr, "overlap_probe: --threads 1-%d, --ahead 1-64, --reps 1-64\n", MAX_THREADS);
        return 2;
    }
    /* Read between runs so that no run finds K/V in cache: twice the L3
     * (a 480 MiB L3 kept data from one pass over 256 MiB to the next). */
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    const size_t bytes = (size_t)HEADS * KEYS * ROW,
                 flush_bytes = l3 > (128L << 20) ? 2 * (size_t)l3 : (size_t)256 << 20;
    unsigned char *k = aligned_alloc(4096, bytes), *v = aligned_alloc(4096, bytes);
    unsigned char *flush = malloc(flush_bytes);
    if (!k || !v || !flush) {
        fprintf(stderr, "overlap_probe: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < bytes; ++i) {
        k[i] = (unsigned char)(i * 7u + 1u);
        v[i] = (unsigned char)(i * 13u + 3u);
    }
    memset(flush, 1, flush_bytes);

    pthread_t th[MAX_THREADS];
    g_job = (job){.k = k, .v = v, .ahead = ahead, .nthreads = nthreads};
    for (int w = 1; w < nthreads; ++w) {
        if (pthread_create(&th[w], NULL, worker, (void *)(long)w)) {
            fprintf(stderr, "overlap_probe: cannot start thread %d\n", w);
            return 1;
        }
        pin(th[w], w);
    }
    pin(pthread_self(), 0);

    printf("overlap_probe: %d threads, %.1f MB of K and V a run, tiles of %d keys, "
           "prefetch %d tiles ahead, medians of %d runs\n",
           nthreads, 2e-6 * (double)bytes, TILE, ahead, reps);
    g_job.work = 0;
    g_job.sch = NONE;
    const double mem = time_job(reps, flush, flush_bytes);
    printf("memory alone: %.3f ms (%.1f GB/s)\n", mem, 2.0 * (double)bytes / mem * 1e-6);
    printf("%-5s %10s", "work", "arith ms");
    for (int s = 0; s < N_SCHEMES; ++s)
        printf(" %9s ms %6s", scheme_name[s], "hidden");
    printf("\n");
    for (const char *p = works; *p;) {
        char *end;
        const long w = strtol(p, &end, 10);
        if (end == p || w < 0 || w > 512) {
            fprintf(stderr, "overlap_probe: --work wants numbers 0-512, comma-separated\n");
            return 2;
        }
        p = *end == ',' ? end + 1 : end;
        g_job.work = (int)w;
        g_job.sch = NONE;
        g_job.resident = 1;
        const double arith = time_job(reps, flush, flush_bytes);
        g_job.resident = 0;
        printf("%-5ld %10.3f", w, arith);
        for (int s = 0; s < N_SCHEMES; ++s) {
            g_job.sch = (enum scheme)s;
            const double both = time_job(reps, flush, flush_bytes);
            const double shorter = arith < mem ? arith : mem;
            printf(" %12.3f %6.2f", both, (mem + arith - both) / shorter);
        }
        printf("\n");
    }
    __atomic_store_n(&g_gen, -1, __ATOMIC_RELEASE);
    for (int w = 1; w < nthreads; ++w)
        pthread_join(th[w], NULL);
    free(k);
    free(v);
    free(flush);
    return 0;
}
