/* The standard ALiBi slopes (Press, Smith and Lewis, "Train Short, Test
 * Long", 2022): a geometric sequence per head count. */
#include <math.h>

#include "clattn.h"

clattn_status clattn_alibi_slopes(int heads, float *slopes)
{
    if (heads <= 0 || !slopes)
        return CLATTN_ERR_INVALID_ARGUMENT;
    /* The largest power of two n <= heads gets ratios 2^(-8/n); the heads
     * past it take every other slope of 2n, interleaving between them. */
    int n = 1;
    while (n * 2 <= heads)
        n *= 2;
    for (int h = 0; h < n; ++h)
        slopes[h] = (float)exp2(-8.0 * (h + 1) / n);
    for (int h = n; h < heads; ++h)
        slopes[h] = (float)exp2(-8.0 * (2 * (h - n) + 1) / (2.0 * n));
    return CLATTN_OK;
}
