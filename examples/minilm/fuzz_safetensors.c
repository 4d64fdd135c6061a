/* st_parse on any bytes: it either refuses them with a message or returns
 * tensors that all lie inside the input, disjoint, uniquely named and sized
 * by their dtype and shape, so that a reader may copy them unchecked. Built
 * like tests/fuzz/'s harnesses: replayed over corpus/safetensors/ in every
 * build, a libFuzzer target with CLATTN_FUZZ=ON. */
#include <string.h>

#include "fuzz.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_file f;
    char err[256];
    if (st_parse(data, size, &f, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0', "a refusal says why");
        FUZZ_CHECK(strlen(err) < sizeof err, "message fits");
        FUZZ_CHECK(f.count == 0 && f.tensors == NULL, "nothing returned on failure");
        return 0;
    }
    FUZZ_CHECK(f.data_start >= 8 && f.data_start <= size, "data section inside the input");
    uint64_t total = 0;
    for (size_t i = 0; i < f.count; ++i) {
        const st_tensor *t = &f.tensors[i];
        FUZZ_CHECK(t->name != NULL, "named");
        FUZZ_CHECK(t->ndim >= 0 && t->ndim <= ST_MAX_DIMS, "rank");
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; ++d)
            numel *= t->shape[d];
        FUZZ_CHECK(t->nbytes == numel * st_dtype_size(t->dtype), "size from dtype and shape");
        FUZZ_CHECK(t->offset >= f.data_start && t->offset <= size &&
                       t->nbytes <= size - t->offset,
                   "tensor inside the input");
        FUZZ_CHECK(st_find(&f, t->name) == t, "names unique");
        total += t->nbytes;
        /* Touch the bytes, so that ASan sees a read past the input. */
        if (t->nbytes) {
            volatile uint8_t first = data[t->offset], last = data[t->offset + t->nbytes - 1];
            (void)first;
            (void)last;
        }
    }
    FUZZ_CHECK(total <= size - f.data_start, "tensors disjoint");
    st_free(&f);
    return 0;
}
