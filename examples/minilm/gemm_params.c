#include "gemm_params.h"

const char *k_xgemm_names[XGEMM_NPARAM] = {"GEMMK", "KREG", "KWG",   "KWI",   "MDIMA", "MDIMC",
                                           "MWG",   "NDIMB", "NDIMC", "NWG",   "SA",    "SB",
                                           "STRM",  "STRN",  "VWM",   "VWN"};
const size_t k_xgemm_wide[XGEMM_NPARAM] = {
    1, 4, 1, 1, 3, 3, MINILM_WIDE_ROWS, 8, 8, MINILM_WIDE_ROWS, 0, 0, 0, 0, 8, 1};
const size_t k_xgemm_narrow[XGEMM_NPARAM] = {
    1, 2, 1, 1, 1, 1, MINILM_GEMM_ROWS, 4, 4, MINILM_GEMM_ROWS, 0, 0, 0, 0, 8, 1};
const size_t k_xgemm_gemmk0[XGEMM_NPARAM] = {0, 1, 16, 2, 4, 4, 64, 4, 4, 64, 0, 0, 0, 0, 8, 8};
const char *k_routine_names[1] = {"XGEMM_MIN_INDIRECT_SIZE"};
const size_t k_routine_cpu[1] = {1};
