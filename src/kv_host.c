/* K/V storage formats on the host: decoding as the kernels decode
 * (cl/kv_read.h: clattn_kv1 and its vector forms, clattn_fp8_*, the fp16
 * bit decoding), and random valid contents for the tuner. */
#include <math.h>
#include <string.h>

#include "kv_host.h"
#include "problem.h"
#include "tuner_check.h"

float clattn__half_to_float(uint16_t h)
{
    const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    const float v = e == 0    ? ldexpf((float)m, -24)
                    : e == 31 ? (m ? NAN : INFINITY)
                              : ldexpf((float)(m | 0x400), e - 25);
    return (h & 0x8000) ? -v : v;
}

uint16_t clattn__float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t mag = x & 0x7fffffffu;
    if (mag > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u);
    if (mag >= 0x477ff000u) /* 65520 and up round to infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (mag < 0x38800000u) /* below 2^-14: a subnormal half, in units of 2^-24 */
        return (uint16_t)(sign | (uint16_t)lrintf(ldexpf(fabsf(f), 24)));
    /* Normal: round the 23-bit mantissa to 10 bits, ties to even (a carry
     * moves into the exponent, as it should), then rebias 127 -> 15. */
    const uint32_t r = mag + 0xfffu + ((mag >> 13) & 1u) - (112u << 23);
    return (uint16_t)(sign | (uint16_t)(r >> 13));
}

clattn_kv_format clattn__kv_format_of(const clattn__shape *s, int is_v)
{
    const clattn_kv_format f = is_v ? s->p.v_storage.format : s->p.k_storage.format;
    if (f != CLATTN_KV_DEFAULT)
        return f;
    return s->p.dtype == CLATTN_F32   ? CLATTN_KV_F32
           : s->p.dtype == CLATTN_F16 ? CLATTN_KV_F16
                                      : CLATTN_KV_BF16;
}

/* Bytes of one unit of a row's offsets and strides: an element of a float
 * format, a byte of the others. */
static int unit_bytes(clattn_kv_format f)
{
    return f == CLATTN_KV_F32 ? 4 : f == CLATTN_KV_F16 || f == CLATTN_KV_BF16 ? 2 : 1;
}

static int is_fp8(clattn_kv_format f)
{
    return f == CLATTN_KV_FP8_E4M3 || f == CLATTN_KV_FP8_E5M2;
}

static float scale_at(const unsigned char *scales, clattn_dtype sdt, int64_t i)
{
    if (sdt == CLATTN_F16) {
        uint16_t h;
        memcpy(&h, scales + 2 * i, sizeof h);
        return clattn__half_to_float(h);
    }
    float v;
    memcpy(&v, scales + 4 * i, sizeof v);
    return v;
}

static float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* OCP FP8 from its bits (cl/kv_read.h's clattn_fp8_1): E4M3 bias 7 with
 * S.1111.111 the only NaN; E5M2 bias 15 with IEEE infinities and NaNs. */
static float fp8(unsigned b, int e5)
{
    const uint32_t mag = b & 0x7fu;
    float x;
    if (e5)
        x = mag == 0x7cu  ? INFINITY
            : mag > 0x7cu ? NAN
            : mag < 4u    ? (float)mag * 0x1p-16f
                          : bits_float((mag << 21) + (112u << 23));
    else
        x = mag == 0x7fu ? NAN : mag < 8u ? (float)mag * 0x1p-9f
                                          : bits_float((mag << 20) + (120u << 23));
    return (b & 0x80u) ? -x : x;
}

void clattn__kv_decode(clattn_kv_format f, int dims, int group, clattn_dtype sdt,
                       const unsigned char *row, const unsigned char *scales, float *out)
{
    for (int d = 0; d < dims; ++d) {
        float x;
        switch (f) {
        case CLATTN_KV_F32:
            memcpy(&x, row + 4 * (size_t)d, sizeof x);
            break;
        case CLATTN_KV_F16:
        case CLATTN_KV_BF16: {
            uint16_t h;
            memcpy(&h, row + 2 * (size_t)d, sizeof h);
            x = f == CLATTN_KV_F16 ? clattn__half_to_float(h) : bits_float((uint32_t)h << 16);
            break;
        }
        case CLATTN_KV_INT8:
            x = (float)(signed char)row[d] * scale_at(scales, sdt, d / group);
            break;
        case CLATTN_KV_INT4: {
            const unsigned byte = row[d / 2];
            const float q = (float)((d & 1) ? byte >> 4 : byte & 15u);
            const int64_t g = 2 * (int64_t)(d / group);
            x = (q - scale_at(scales, sdt, g + 1)) * scale_at(scales, sdt, g);
            break;
        }
        case CLATTN_KV_Q8_0: {
            const unsigned char *blk = row + (size_t)(d / 32) * 34;
            uint16_t h;
            memcpy(&h, blk, sizeof h);
            x = (float)(signed char)blk[2 + d % 32] * clattn__half_to_float(h);
            break;
        }
        case CLATTN_KV_Q4_0: {
            const unsigned char *blk = row + (size_t)(d / 32) * 18;
            const unsigned byte = blk[2 + d % 16];
            uint16_t h;
            memcpy(&h, blk, sizeof h);
            x = ((float)(d % 32 < 16 ? byte & 15u : byte >> 4) - 8.0f) *
                clattn__half_to_float(h);
            break;
        }
        case CLATTN_KV_FP8_E4M3:
        case CLATTN_KV_FP8_E5M2:
            x = fp8(row[d], f == CLATTN_KV_FP8_E5M2) * scale_at(scales, sdt, 0);
            break;
        default: /* DEFAULT is resolved by the caller (clattn__kv_format_of) */
            x = NAN;
            break;
        }
        out[d] = x;
    }
}

void clattn__kv_host_row(const clattn__shape *s, int is_v, const void *data, const void *scales,
                         const int32_t *table, int b, int kvh, int j, float *out)
{
    const clattn_problem *p = &s->p;
    const clattn_kv_format f = clattn__kv_format_of(s, is_v);
    const clattn_kv_storage *sto = is_v ? &p->v_storage : &p->k_storage;
    const clattn_strides *st = is_v ? &p->v_strides : &p->k_strides;
    const int dims = is_v ? p->head_dim_v : p->head_dim;
    const int group = is_v ? s->kv.v_group : s->kv.k_group;
    int64_t off, row;
    if (p->paged.enabled) {
        const int ps = p->paged.page_size;
        int64_t page = table[(int64_t)b * p->paged.max_pages_per_seq + j / ps];
        page = page < 0 ? 0 : page >= p->paged.num_pages ? p->paged.num_pages - 1 : page;
        const int slot = j % ps;
        off = page * st->batch + kvh * st->head + slot * st->seq;
        row = (page * p->kv_heads + kvh) * ps + slot;
    } else {
        off = b * st->batch + kvh * st->head + j * st->seq;
        row = ((int64_t)b * p->kv_heads + kvh) * p->seq_kv + j;
    }
    /* Scales are numbered by row (clattn.h), whatever the data's strides. */
    const int64_t groups = group ? dims / group : 1;
    const int64_t sc = f == CLATTN_KV_INT8   ? row * groups
                       : f == CLATTN_KV_INT4 ? 2 * row * groups
                       : sto->per_head       ? kvh
                                             : 0;
    const unsigned char *sp =
        scales ? (const unsigned char *)scales + sc * (sto->scale_dtype == CLATTN_F16 ? 2 : 4)
               : NULL;
    clattn__kv_decode(f, dims, group, sto->scale_dtype,
                      (const unsigned char *)data + off * unit_bytes(f), sp, out);
}

/* The generator of clattn__fill_random: 24 random bits per step. */
static uint32_t next_bits(uint32_t *x)
{
    *x = *x * 1664525u + 1013904223u;
    return *x >> 8;
}

static float next_unit(uint32_t *x) { return (float)next_bits(x) / 16777216.0f; }

static void put_scale(unsigned char *scales, clattn_dtype sdt, int64_t i, float v)
{
    if (sdt == CLATTN_F16) {
        const uint16_t h = clattn__float_to_half(v);
        memcpy(scales + 2 * i, &h, sizeof h);
    } else {
        memcpy(scales + 4 * i, &v, sizeof v);
    }
}

static void put_half(unsigned char *at, float v)
{
    const uint16_t h = clattn__float_to_half(v);
    memcpy(at, &h, sizeof h);
}

void clattn__kv_host_fill(const clattn__shape *s, int is_v, uint32_t seed, void *data,
                          void *scales)
{
    const clattn_problem *p = &s->p;
    const clattn_kv_format f = clattn__kv_format_of(s, is_v);
    const clattn_kv_storage *sto = is_v ? &p->v_storage : &p->k_storage;
    const int64_t extent = is_v ? s->v_extent : s->k_extent;
    if (f == CLATTN_KV_F32 || f == CLATTN_KV_F16 || f == CLATTN_KV_BF16) {
        clattn__fill_random(data, f == CLATTN_KV_F32   ? CLATTN_F32
                                  : f == CLATTN_KV_F16 ? CLATTN_F16
                                                       : CLATTN_BF16,
                            (size_t)extent, seed);
        return;
    }
    const int dims = is_v ? p->head_dim_v : p->head_dim;
    const int group = is_v ? s->kv.v_group : s->kv.k_group;
    const int64_t groups = group ? dims / group : 1, units = clattn__kv_row_units(f, dims);
    const clattn_dtype sdt = sto->scale_dtype;
    unsigned char *u = data, *sc = scales;
    uint32_t x = seed * 2654435761u + 1u;
    /* Packed: the rows one after another, in the order scales number them. */
    for (int64_t r = 0; r < extent / units; ++r) {
        unsigned char *row = u + r * units;
        switch (f) {
        case CLATTN_KV_INT8: /* codes -127..127, scales so that |x| < 1.5 */
            for (int d = 0; d < dims; ++d)
                row[d] = (unsigned char)(signed char)((int)(next_bits(&x) % 255u) - 127);
            for (int64_t g = 0; g < groups; ++g)
                put_scale(sc, sdt, r * groups + g, (0.5f + next_unit(&x)) / 127.0f);
            break;
        case CLATTN_KV_INT4: /* codes 0..15 around a zero near 7.5 */
            for (int c = 0; c < dims / 2; ++c)
                row[c] = (unsigned char)next_bits(&x);
            for (int64_t g = 0; g < groups; ++g) {
                put_scale(sc, sdt, 2 * (r * groups + g), (0.5f + next_unit(&x)) / 8.0f);
                put_scale(sc, sdt, 2 * (r * groups + g) + 1, 6.5f + 2.0f * next_unit(&x));
            }
            break;
        case CLATTN_KV_Q8_0:
        case CLATTN_KV_Q4_0: {
            const int q8 = f == CLATTN_KV_Q8_0, bytes = q8 ? 32 : 16;
            for (int blk = 0; blk < dims / 32; ++blk) {
                unsigned char *at = row + blk * (q8 ? 34 : 18);
                put_half(at, (0.5f + next_unit(&x)) / (q8 ? 127.0f : 8.0f));
                for (int i = 0; i < bytes; ++i)
                    at[2 + i] = q8 ? (unsigned char)(signed char)((int)(next_bits(&x) % 255u) -
                                                                  127)
                                   : (unsigned char)next_bits(&x);
            }
            break;
        }
        default: { /* FP8: exponents up to the bias (|x| < 2), never NaN or inf */
            const int e5 = f == CLATTN_KV_FP8_E5M2;
            for (int d = 0; d < dims; ++d) {
                const uint32_t b = next_bits(&x);
                const unsigned e = e5 ? b % 16u : b % 8u, m = (b >> 4) & (e5 ? 3u : 7u);
                row[d] = (unsigned char)(((b >> 8) & 0x80u) | (e << (e5 ? 2 : 3)) | m);
            }
            break;
        }
        }
    }
    if (is_fp8(f))
        for (int h = 0; h < (sto->per_head ? p->kv_heads : 1); ++h)
            put_scale(sc, sdt, h, 0.25f + 0.5f * next_unit(&x));
}
