/*
 * Strided views: BSHD and other permuted layouts, packed QKV in one buffer
 * (host pointers and sub-buffers), a strided O whose gaps must keep their
 * contents, and valid corner cases of strides and sizes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "harness.h"

static clattn_strides strides3(int64_t batch, int64_t head, int64_t seq)
{
    clattn_strides s;
    s.batch = batch;
    s.head = head;
    s.seq = seq;
    return s;
}

static clattn_strides bshd(int H, int S, int D)
{
    return strides3((int64_t)S * H * D, D, (int64_t)H * D);
}

void case_layout_bshd(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    static const clattn_dtype dts[2] = {CLATTN_F32, CLATTN_F16};
    for (int variant = 0; variant < 2; variant++)
        for (int di = 0; di < 2; di++)
            for (int pi = 0; pi < 4; pi++) {
                clattn_problem p;
                memset(&p, 0, sizeof p);
                p.batch = 2;
                p.heads = 4;
                p.kv_heads = 2;
                p.seq_q = 33;
                p.seq_kv = 40;
                p.head_dim = 64;
                p.dtype = dts[di];
                p.path = t_all_paths[pi];
                p.causal = pi % 2 ? CLATTN_CAUSAL_BOTTOM_RIGHT : CLATTN_CAUSAL_NONE;
                const int B = p.batch, H = p.heads, Hkv = p.kv_heads, D = p.head_dim;
                if (variant == 0) { /* BSHD everywhere */
                    p.q_strides = bshd(H, p.seq_q, D);
                    p.k_strides = bshd(Hkv, p.seq_kv, D);
                    p.v_strides = bshd(Hkv, p.seq_kv, D);
                    p.o_strides = bshd(H, p.seq_q, D);
                } else { /* SBHD: sequence outermost, then batch, then head */
                    p.q_strides = strides3((int64_t)H * D, D, (int64_t)B * H * D);
                    p.k_strides = strides3((int64_t)Hkv * D, D, (int64_t)B * Hkv * D);
                    p.v_strides = strides3((int64_t)Hkv * D, D, (int64_t)B * Hkv * D);
                    p.o_strides = strides3((int64_t)H * D, D, (int64_t)B * H * D);
                }
                t_tensors t;
                if (t_tensors_init(&t, &p, T_WITH_LSE, 0xb5d0000u + variant * 64 + di * 8 + pi) !=
                    0)
                    return;
                char label[64];
                snprintf(label, sizeof label, "%s/%s/%s", variant ? "sbhd" : "bshd",
                         t_path_name(p.path), t_dtype_name(p.dtype));
                t_check_run(ctx, label, &t, (pi + di + variant) % 2);
                t_tensors_free(&t);
            }
    clattn_context_destroy(ctx);
}

void case_layout_strided_o(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    for (int variant = 0; variant < 2; variant++)
        for (int pi = 0; pi < 4; pi++)
            for (int host = 0; host < 2; host++) {
                clattn_problem p;
                memset(&p, 0, sizeof p);
                p.batch = 2;
                p.heads = 3;
                p.seq_q = 20;
                p.seq_kv = 27;
                p.head_dim = 32;
                p.head_dim_v = 48;
                p.dtype = CLATTN_F32;
                p.path = t_all_paths[pi];
                const int B = p.batch, H = p.heads, Sq = p.seq_q, Dv = p.head_dim_v;
                if (variant == 0) { /* gaps after each row, head and batch */
                    p.o_strides.seq = Dv + 5;
                    p.o_strides.head = (int64_t)Sq * (Dv + 5) + 3;
                    p.o_strides.batch = H * p.o_strides.head + 11;
                } else { /* heads outermost, rows padded */
                    p.o_strides.seq = Dv + 2;
                    p.o_strides.batch = (int64_t)Sq * (Dv + 2);
                    p.o_strides.head = B * p.o_strides.batch + 1;
                }
                t_tensors t;
                if (t_tensors_init(&t, &p, T_WITH_LSE, 0x57d0000u + variant * 16 + pi * 2 + host) !=
                    0)
                    return;
                char label[64];
                snprintf(label, sizeof label, "%s/%s", variant ? "hbsd_padded" : "padded",
                         t_path_name(p.path));
                t_check_run(ctx, label, &t, host);
                t_tensors_free(&t);
            }
    clattn_context_destroy(ctx);
}

/* q, k, v interleaved as [B][S][3][H][D] in one allocation; O BSHD apart. */
static void packed_qkv_run(clattn_context *ctx, clattn_dtype dt, clattn_path path, int causal,
                           int use_device, uint64_t seed)
{
    const int B = 2, S = 24, H = 4, D = 64;
    const int64_t HD = (int64_t)H * D;
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = B;
    p.heads = H;
    p.seq_q = S;
    p.seq_kv = S;
    p.head_dim = D;
    p.dtype = dt;
    p.causal = causal;
    p.path = path;
    p.q_strides = strides3((int64_t)S * 3 * HD, D, 3 * HD);
    p.k_strides = p.q_strides;
    p.v_strides = p.q_strides;
    p.o_strides = bshd(H, S, D);

    const size_t esz = ref_dtype_size(dt);
    const int64_t qkv_n = (int64_t)B * S * 3 * HD;
    const int64_t in_ext = ref_extent(&p.q_strides, B, H, S, D);
    const int64_t o_n = ref_extent(&p.o_strides, B, H, S, D), o_alloc = o_n + T_GUARD;
    const int64_t lse_n = (int64_t)B * H * S;
    char label[80];
    snprintf(label, sizeof label, "packed_qkv/%s/%s/%s%s", use_device ? "subbuffers" : "host",
             t_path_name(path), t_dtype_name(dt), causal ? "/causal" : "");

    cl_context c = t_cl_context(ctx);
    cl_command_queue q = t_queue(ctx);
    cl_device_id dev = NULL;
    clattn_context_get_cl(ctx, NULL, NULL, &dev);
    cl_uint align_bits = 0;
    if (dev)
        T_CL(clGetDeviceInfo(dev, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits,
                             NULL));
    const size_t align = align_bits ? align_bits / 8 : 128;
    if (use_device && (size_t)(HD * esz) % align != 0) {
        t_skip("%s: view offset %lld bytes is not a multiple of the base alignment %zu",
              label, (long long)(HD * esz), align);
        return;
    }
    /* one image: QKV, then O at the next aligned offset, then its guard */
    const size_t o_off = ((size_t)qkv_n * esz + align - 1) / align * align;
    const size_t total = o_off + (size_t)o_alloc * esz;
    unsigned char *image = malloc(total);
    unsigned char *image0 = malloc(total);
    float *lse = malloc(sizeof(float) * (size_t)(lse_n + T_GUARD));
    if (!image || !image0 || !lse) {
        T_FAIL("out of host memory");
        free(image);
        free(image0);
        free(lse);
        return;
    }
    memset(image, 0, total);
    t_rng r;
    t_rng_seed(&r, seed);
    for (int64_t e = 0; e < qkv_n; e++)
        ref_store(image, dt, e, (float)t_rng_uniform(&r, -1.0, 1.0));
    t_fill_poison(image + o_off, dt, o_alloc);
    memcpy(image0, image, total);
    for (int64_t e = 0; e < lse_n + T_GUARD; e++) {
        uint32_t bits = 0x7fc1a5a5u; /* the harness's LSE poison */
        memcpy(&lse[e], &bits, sizeof bits);
    }

    clattn_host_buffers in;
    memset(&in, 0, sizeof in);
    in.q = image;
    in.k = image + HD * esz;
    in.v = image + 2 * HD * esz;

    clattn_status st;
    if (!use_device) {
        clattn_host_buffers hb = in;
        hb.o = image + o_off;
        hb.lse = lse;
        st = clattn_forward_host(ctx, &p, &hb);
    } else {
        cl_int err = CL_SUCCESS;
        cl_mem parent = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, total, image,
                                       &err);
        T_CHECK(err == CL_SUCCESS, "clCreateBuffer(parent) -> %d", (int)err);
        cl_mem lse_buf = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                                        sizeof(float) * (size_t)(lse_n + T_GUARD), lse, &err);
        T_CHECK(err == CL_SUCCESS, "clCreateBuffer(lse) -> %d", (int)err);
        cl_mem sub[4] = {NULL, NULL, NULL, NULL};
        const size_t origin[4] = {0, (size_t)(HD * esz), (size_t)(2 * HD * esz), o_off};
        const size_t size[4] = {(size_t)in_ext * esz, (size_t)in_ext * esz, (size_t)in_ext * esz,
                                (size_t)o_alloc * esz};
        for (int i = 0; i < 4 && parent; i++) {
            cl_buffer_region reg = {origin[i], size[i]};
            sub[i] = clCreateSubBuffer(parent, i == 3 ? CL_MEM_READ_WRITE : CL_MEM_READ_ONLY,
                                       CL_BUFFER_CREATE_TYPE_REGION, &reg, &err);
            T_CHECK(err == CL_SUCCESS, "clCreateSubBuffer(%d) -> %d", i, (int)err);
        }
        st = CLATTN_ERR_OPENCL;
        if (sub[0] && sub[1] && sub[2] && sub[3] && lse_buf) {
            clattn_buffers b;
            memset(&b, 0, sizeof b);
            b.q = sub[0];
            b.k = sub[1];
            b.v = sub[2];
            b.o = sub[3];
            b.lse = lse_buf;
            cl_event done = NULL;
            st = clattn_forward(ctx, &p, &b, 0, NULL, &done);
            if (st == CLATTN_OK && done) {
                T_CL(clWaitForEvents(1, &done));
                clReleaseEvent(done);
            }
            T_CL(clEnqueueReadBuffer(q, parent, CL_TRUE, 0, total, image, 0, NULL, NULL));
            T_CL(clEnqueueReadBuffer(q, lse_buf, CL_TRUE, 0,
                                     sizeof(float) * (size_t)(lse_n + T_GUARD), lse, 0, NULL,
                                     NULL));
        }
        for (int i = 0; i < 4; i++)
            if (sub[i])
                clReleaseMemObject(sub[i]);
        if (parent)
            clReleaseMemObject(parent);
        if (lse_buf)
            clReleaseMemObject(lse_buf);
    }

    int before = t_failures;
    t_result res = {0};
    if (st != CLATTN_OK) {
        T_FAIL("%s: forward -> %s: %s", label, clattn_status_string(st), clattn_last_error(ctx));
    } else {
        /* the inputs, read from the (re-read) image, must be as they were */
        T_CHECK(t_same_bytes(image, image0, (size_t)qkv_n * esz),
                "%s: the packed QKV inputs were modified", label);
        T_CHECK(t_same_bytes(image + (size_t)qkv_n * esz, image0 + (size_t)qkv_n * esz,
                             o_off - (size_t)qkv_n * esz),
                "%s: padding between QKV and O was modified", label);
        res = t_verify_raw(label, &p, &in, image + o_off, image0 + o_off, o_alloc, lse,
                           lse_n + T_GUARD, t_tolerance_for(dt));
    }
    t_log("%s %s: relL2 %.2e lse %.1e", t_failures != before ? "BAD " : "ok  ", label, res.rel_l2,
          res.lse_err);
    free(image);
    free(image0);
    free(lse);
}

void case_layout_packed_qkv(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    static const clattn_dtype dts[2] = {CLATTN_F32, CLATTN_F16};
    for (int pi = 0; pi < 4; pi++)
        for (int di = 0; di < 2; di++)
            for (int dev = 0; dev < 2; dev++)
                packed_qkv_run(ctx, dts[di], t_all_paths[pi],
                               (pi + dev) % 2 ? CLATTN_CAUSAL_BOTTOM_RIGHT : CLATTN_CAUSAL_NONE,
                               dev, 0x9c0000u + (uint64_t)pi * 4 + di * 2 + dev);
    clattn_context_destroy(ctx);
}

/* Valid corners: zero strides over extents of one, extreme head dims, every
 * visibility rule at once, single elements. */
void case_edge_valid(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    enum {
        E_ZERO_BATCH_STRIDE,
        E_ZERO_SEQ_STRIDE,
        E_D256_DV1,
        E_D1_DV256,
        E_ALL_RULES,
        E_ONE,
        E_N
    };
    static const char *const names[E_N] = {"batch1_zero_batch_stride", "seq1_zero_seq_stride",
                                           "d256_dv1", "d1_dv256", "all_rules_at_once",
                                           "single_element"};
    for (int e = 0; e < E_N; e++)
        for (int pi = 0; pi < 4; pi++) {
            clattn_problem p;
            memset(&p, 0, sizeof p);
            p.batch = 2;
            p.heads = 2;
            p.seq_q = 9;
            p.seq_kv = 13;
            p.head_dim = 32;
            p.dtype = CLATTN_F32;
            p.path = t_all_paths[pi];
            unsigned flags = T_WITH_LSE;
            switch (e) {
            case E_ZERO_BATCH_STRIDE: /* batch 1: a zero batch stride is not an overlap */
                p.batch = 1;
                p.q_strides = strides3(0, (int64_t)p.seq_q * 40, 40);
                p.k_strides = strides3(0, (int64_t)p.seq_kv * 32, 32);
                p.o_strides = strides3(0, 32, (int64_t)p.heads * 32);
                break;
            case E_ZERO_SEQ_STRIDE: /* seq_q 1: a zero seq stride is not an overlap */
                p.seq_q = 1;
                p.q_strides = strides3((int64_t)p.heads * 32, 32, 0);
                p.o_strides = strides3((int64_t)p.heads * 40, 40, 0);
                break;
            case E_D256_DV1:
                p.head_dim = 256;
                p.head_dim_v = 1;
                p.kv_heads = 1;
                break;
            case E_D1_DV256:
                p.head_dim = 1;
                p.head_dim_v = 256;
                p.kv_heads = 2;
                break;
            case E_ALL_RULES:
                p.batch = 3;
                p.heads = 4;
                p.kv_heads = 2;
                p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
                p.windowed = 1;
                p.window_left = 4;
                p.window_right = 1;
                p.mask_head_stride = (int64_t)p.seq_q * p.seq_kv;
                flags |= T_WITH_MASK | T_WITH_KV_LENS | T_NAN_BEYOND_LEN;
                break;
            case E_ONE:
                p.batch = 1;
                p.heads = 1;
                p.seq_q = 1;
                p.seq_kv = 1;
                p.head_dim = 1;
                break;
            default:
                break;
            }
            t_tensors t;
            if (t_tensors_init(&t, &p, flags, 0xed9e0000u + (uint64_t)e * 8 + pi) != 0)
                return;
            char label[64];
            snprintf(label, sizeof label, "%s/%s", names[e], t_path_name(p.path));
            t_check_run(ctx, label, &t, (e + pi) % 2);
            t_tensors_free(&t);
        }
    clattn_context_destroy(ctx);
}
