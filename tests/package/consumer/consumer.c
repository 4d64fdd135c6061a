/* The smallest real use of an installed clattn: check the version, run one
 * tiny attention on the default device, compare with a direct computation. */
#include <clattn.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SEQ_Q 3
#define SEQ_KV 5
#define DIM 4

int main(void)
{
    char expect[32];
    float q[SEQ_Q * DIM], k[SEQ_KV * DIM], v[SEQ_KV * DIM], o[SEQ_Q * DIM];
    double worst = 0.0;
    clattn_context *ctx = NULL;
    clattn_status st;

    snprintf(expect, sizeof expect, "%d.%d.%d", CLATTN_VERSION_MAJOR, CLATTN_VERSION_MINOR,
             CLATTN_VERSION_PATCH);
    if (strcmp(clattn_version(), expect) != 0) {
        fprintf(stderr, "clattn_version() is %s, the header says %s\n", clattn_version(),
                expect);
        return 1;
    }

    for (int i = 0; i < SEQ_Q * DIM; i++) q[i] = (float)sin(0.7 * i);
    for (int i = 0; i < SEQ_KV * DIM; i++) {
        k[i] = (float)cos(0.3 * i);
        v[i] = (float)(0.1 * i - 0.5);
    }
    memset(o, 0, sizeof o);

    st = clattn_context_create(NULL, &ctx);
    if (st != CLATTN_OK) {
        fprintf(stderr, "clattn_context_create: %s\n", clattn_status_string(st));
        return 1;
    }
    {
        clattn_problem p;
        clattn_host_buffers hb;
        memset(&p, 0, sizeof p);
        memset(&hb, 0, sizeof hb);
        p.batch = 1;
        p.heads = 1;
        p.seq_q = SEQ_Q;
        p.seq_kv = SEQ_KV;
        p.head_dim = DIM;
        p.dtype = CLATTN_F32;
        hb.q = q;
        hb.k = k;
        hb.v = v;
        hb.o = o;
        st = clattn_forward_host(ctx, &p, &hb);
    }
    if (st != CLATTN_OK) {
        fprintf(stderr, "clattn_forward_host: %s: %s\n", clattn_status_string(st),
                clattn_last_error(ctx));
        clattn_context_destroy(ctx);
        return 1;
    }
    clattn_context_destroy(ctx);

    for (int i = 0; i < SEQ_Q; i++) {
        double s[SEQ_KV], m = -INFINITY, sum = 0.0;
        for (int j = 0; j < SEQ_KV; j++) {
            double dot = 0.0;
            for (int d = 0; d < DIM; d++) dot += (double)q[i * DIM + d] * k[j * DIM + d];
            s[j] = dot / sqrt((double)DIM);
            if (s[j] > m) m = s[j];
        }
        for (int j = 0; j < SEQ_KV; j++) sum += s[j] = exp(s[j] - m);
        for (int d = 0; d < DIM; d++) {
            double want = 0.0;
            for (int j = 0; j < SEQ_KV; j++) want += s[j] / sum * v[j * DIM + d];
            double err = fabs(want - o[i * DIM + d]);
            if (isnan(err)) err = INFINITY;
            if (err > worst) worst = err;
        }
    }
    if (worst > 1e-5) {
        fprintf(stderr, "clattn %s: max |error| %g is above 1e-5\n", clattn_version(), worst);
        return 1;
    }
    printf("clattn %s: attention of a %dx%dx%d problem matches (max |error| %.1e)\n",
           clattn_version(), SEQ_Q, SEQ_KV, DIM, worst);
    return 0;
}
