/* CLBlast's Xgemm parameters that ops.c gives CPU devices (and
 * clattn-minilm-gemm-grid measures). CLBlast's database has no entry for
 * PoCL, and its generic defaults (local-memory tiles of 32 with vector width
 * 2-4) reached 7-11 GFLOP/s on the encoder's GEMMs there.
 *
 * Both sets select CLBlast's second GEMM kernel (GEMMK 1: A read along its
 * rows, B along its columns, C written row-major), which for a row-major
 * product with W stored [k][n] and m a multiple of the tile needs no
 * transposed or padded copy of any operand: the first kernel (GEMMK 0)
 * transposes A, W and C around every call, a quarter of the time. The
 * kernel's M and N tiles (MWG, NWG) must be equal: otherwise CLBlast 1.5.3
 * computed wrong results on PoCL (measured); its work-group may be
 * rectangular. In this kernel MWG/MDIMC are C's columns a work-item keeps,
 * as float VWM vectors, and NWG/NDIMC its rows.
 *
 * The wide set: each work-item keeps 6 rows x 16 columns of C in twelve
 * float8 accumulators (they fit AVX2's sixteen vector registers with a row
 * of B and a broadcast value of A), four values of k at a time, in
 * work-groups of 3 x 8 over tiles of 48. The narrow set (4 rows x 16
 * columns a work-item, work-groups of 1 x 4, tiles of 16) wastes fewer
 * padding rows on short inputs. Both were the best of a grid
 * (clattn-minilm-gemm-grid) on PoCL 3.1 (2 cores, AVX2 Zen 3); GFLOP/s on
 * the encoder's shapes, three runs: wide 107-120, narrow 82-104, the GEMMK 0
 * parameters used before 22-28 (BENCHMARKS.md). Not measured on AVX-512
 * hosts. The indirect kernel is used at every size (XGEMM_MIN_INDIRECT_SIZE
 * 1): without copies it beat the direct one even at 16 rows. */
#ifndef MINILM_GEMM_PARAMS_H
#define MINILM_GEMM_PARAMS_H

#include <stddef.h>

/* GEMMs multiply a whole number of row tiles: m must be a multiple of
 * MINILM_GEMM_ROWS (ops_gemm_rows rounds rows up to it or to the wide
 * tile, whichever is faster). */
#define MINILM_GEMM_ROWS 16
#define MINILM_WIDE_ROWS 48

enum { XGEMM_NPARAM = 16 };
extern const char *k_xgemm_names[XGEMM_NPARAM];
extern const size_t k_xgemm_wide[XGEMM_NPARAM], k_xgemm_narrow[XGEMM_NPARAM];
/* What ops.c gave CLBlast before (GEMMK 0: 64 x 64 tiles of 4 x 4
 * work-items, float8, no local memory), called the old way (W as [n][k],
 * transposed by CLBlast): the baseline of clattn-minilm-gemm-grid. */
extern const size_t k_xgemm_gemmk0[XGEMM_NPARAM];
extern const char *k_routine_names[1];
extern const size_t k_routine_cpu[1];

#endif
