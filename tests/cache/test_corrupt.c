/* corrupt_binary: every way a cached program binary can be damaged is
 * noticed, reported once through the log, removed (counted in
 * clattn_stats.cache_rejected) and rebuilt, the result is right, and the
 * next context loads the rewritten binary without complaint.
 *
 * The damage is aimed with the file layout of src/program_cache.c: a 40-byte
 * header (magic[8], u32 version, u32 reserved, u64 key_len, u64 payload_len,
 * u64 payload_hash), the key text, the driver's binary. */
#define _POSIX_C_SOURCE 200809L
#include "cache_tests.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER 40

typedef struct bin_file {
    char path[PATH_MAX * 2];
    unsigned char *data; /* the pristine bytes */
    size_t len, key_len, payload_len;
} bin_file;

typedef enum {
    D_TRUNCATE,     /* keep the first `at` bytes */
    D_FLIP,         /* invert the byte at `at` */
    D_VERSION,      /* another format version */
    D_OTHER_KEY,    /* another kernel's (valid) file under this name */
    D_APPEND,       /* bytes after the payload */
    D_BAD_PAYLOAD,  /* garbage the checksum agrees with: the driver must refuse it */
    D_SYMLINK,      /* a symlink to a valid copy */
    D_OTHER_OWNER,  /* a valid file owned by another user (needs root) */
} damage_kind;

typedef struct damage {
    const char *name;
    damage_kind kind;
    size_t at;
    int rejected; /* expected cache_rejected */
} damage;

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The binary whose key names kernel, from the programs directory. */
static int find_bin(const char *root, const char *kernel, const char *not_path, bin_file *out)
{
    char dir[PATH_MAX], *names[32], want[96];
    int n, found = 0;
    snprintf(dir, sizeof dir, "%s/programs", root);
    snprintf(want, sizeof want, "kernel %s\n", kernel);
    n = ct_list(dir, ".bin", names, 32);
    memset(out, 0, sizeof *out);
    for (int i = 0; i < n && !found; i++) {
        size_t len;
        unsigned char *data;
        snprintf(out->path, sizeof out->path, "%s/%s", dir, names[i]);
        if (not_path && strcmp(out->path, not_path) == 0) continue;
        data = ct_read(out->path, &len);
        if (data && len > HEADER && (!kernel[0] || strstr((char *)data + HEADER, want))) {
            uint64_t kl, pl;
            memcpy(&kl, data + 16, 8);
            memcpy(&pl, data + 24, 8);
            if (kl + pl + HEADER == len) {
                out->data = data;
                out->len = len;
                out->key_len = (size_t)kl;
                out->payload_len = (size_t)pl;
                found = 1;
                continue;
            }
        }
        free(data);
    }
    ct_free_list(names, n);
    return found;
}

/* Puts the damaged file in place of f. Returns 0 when the case cannot be
 * set up here (it is skipped), -1 on a failure. */
static int apply(const bin_file *f, const bin_file *other, const damage *d, const char *root)
{
    unsigned char *buf = malloc(f->len + 16);
    size_t len = f->len;
    int rc = 1;
    char aside[PATH_MAX + 16];
    if (!buf) return -1;
    memcpy(buf, f->data, f->len);
    unlink(f->path);
    switch (d->kind) {
    case D_TRUNCATE: len = d->at; break;
    case D_FLIP: buf[d->at] ^= 0xFF; break;
    case D_VERSION: {
        uint32_t v;
        memcpy(&v, buf + 8, 4);
        v += 1;
        memcpy(buf + 8, &v, 4);
        break;
    }
    case D_OTHER_KEY:
        free(buf);
        return ct_write(f->path, other->data, other->len) == 0 ? 1 : -1;
    case D_APPEND:
        memcpy(buf + len, "padding", 7);
        len += 7;
        break;
    case D_BAD_PAYLOAD: {
        size_t off = HEADER + f->key_len;
        uint64_t h;
        for (size_t i = off; i < len; i++) buf[i] = (unsigned char)(0x5A ^ (i * 7));
        h = fnv1a(buf + off, len - off);
        memcpy(buf + 32, &h, 8);
        break;
    }
    case D_SYMLINK:
        snprintf(aside, sizeof aside, "%s/valid-copy.bin", root);
        if (ct_write(aside, buf, len) != 0 || symlink(aside, f->path) != 0) rc = -1;
        free(buf);
        return rc;
    case D_OTHER_OWNER:
        if (geteuid() != 0) {
            free(buf);
            return 0;
        }
        if (ct_write(f->path, buf, len) != 0 || chown(f->path, 65534, 65534) != 0) rc = -1;
        free(buf);
        return rc;
    }
    if (ct_write(f->path, buf, len) != 0) rc = -1;
    free(buf);
    return rc;
}

/* One case: damage, a context that must recover, one that must be clean. */
static void run_case(const char *root, const bin_file *f, const bin_file *other,
                     const damage *d)
{
    clattn_problem p = ct_shape_prefill();
    const char *base = strrchr(f->path, '/') + 1;
    ct_log log;
    clattn_context *ctx;
    clattn_stats st;
    int rc = apply(f, other, d, root);
    char what[160];
    if (rc == 0) {
        SKIP("  %-34s (needs root)", d->name);
        return;
    }
    CHECK(rc > 0, "%s: cannot set the case up", d->name);
    p.path = CLATTN_PATH_FUSED;
    snprintf(what, sizeof what, "%s: forward over the damaged file", d->name);
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    ct_forward_ok(ctx, &p, what);
    st = ct_stats(ctx);
    clattn_context_destroy(ctx);
    CHECK(log.warnings == 1, "%s: %d warnings, expected one:\n%s", d->name, log.warnings,
          log.text);
    CHECK(strstr(log.text, base) != NULL, "%s: the warning does not name %s:\n%s", d->name,
          base, log.text);
    CHECK(st.cache_rejected == (uint64_t)d->rejected, "%s: cache_rejected %llu, expected %d",
          d->name, (unsigned long long)st.cache_rejected, d->rejected);
    CHECK(st.programs_built == 1 && st.programs_loaded == 0 && st.programs_stored == 1,
          "%s: built %llu loaded %llu stored %llu, expected 1 0 1 (rebuilt and written back)",
          d->name, (unsigned long long)st.programs_built,
          (unsigned long long)st.programs_loaded, (unsigned long long)st.programs_stored);
    NOTE("  %-34s reported: %.*s", d->name,
         (int)(strchr(log.text, '\n') ? strchr(log.text, '\n') - log.text : 0), log.text);

    /* Healed: the next context loads the rewritten binary. */
    snprintf(what, sizeof what, "%s: forward after healing", d->name);
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    ct_forward_ok(ctx, &p, what);
    st = ct_stats(ctx);
    clattn_context_destroy(ctx);
    CHECK(log.warnings == 0, "%s: the next context still warns:\n%s", d->name, log.text);
    CHECK(st.programs_loaded == 1 && st.programs_built == 0 && st.cache_rejected == 0,
          "%s: next context: loaded %llu built %llu rejected %llu, expected 1 0 0", d->name,
          (unsigned long long)st.programs_loaded, (unsigned long long)st.programs_built,
          (unsigned long long)st.cache_rejected);
    {
        struct stat sb;
        CHECK(lstat(f->path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_uid == geteuid() &&
                  (sb.st_mode & 0077) == 0,
              "%s: the rewritten entry is not a private regular file of ours", d->name);
    }
}

int test_corrupt_binary(int argc, char **argv)
{
    char root[PATH_MAX];
    clattn_problem p = ct_shape_prefill();
    bin_file f, other;
    ct_log log;
    clattn_context *ctx;
    (void)argc;
    (void)argv;
    ct_fresh_dir("corrupt_binary", root, sizeof root);
    /* Binaries of the fused kernel and of the three-stage ones. */
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    p.path = CLATTN_PATH_FUSED;
    ct_forward_ok(ctx, &p, "priming (fused)");
    p.path = CLATTN_PATH_THREE_STAGE;
    ct_forward_ok(ctx, &p, "priming (three-stage)");
    clattn_context_destroy(ctx);
    CHECK(log.warnings == 0, "warnings while priming:\n%s", log.text);
    /* The fused kernel is the rows-in-lanes or the vector one on CPUs, the
     * row one elsewhere. */
    if ((!find_bin(root, "attn_fwd_fused_lanes", NULL, &f) &&
         !find_bin(root, "attn_fwd_fused_vec", NULL, &f) &&
         !find_bin(root, "attn_fwd_fused", NULL, &f)) ||
        !find_bin(root, "", f.path, &other)) {
        CHECK(0, "the priming forwards did not leave a fused and another binary in %s/programs",
              root);
        ct_remove_tree(root);
        return 1;
    }
    NOTE("fused binary %s: %zu bytes (key %zu, payload %zu)", f.path, f.len, f.key_len,
         f.payload_len);
    {
        const size_t key = HEADER, pay = HEADER + f.key_len;
        const damage cases[] = {
            {"truncated to 0 bytes", D_TRUNCATE, 0, 1},
            {"truncated mid-header (20)", D_TRUNCATE, 20, 1},
            {"truncated after the header", D_TRUNCATE, HEADER, 1},
            {"truncated mid-key", D_TRUNCATE, key + f.key_len / 2, 1},
            {"truncated mid-payload", D_TRUNCATE, pay + f.payload_len / 2, 1},
            {"truncated by its last byte", D_TRUNCATE, f.len - 1, 1},
            {"flipped byte in the magic", D_FLIP, 0, 1},
            {"flipped byte in key_len", D_FLIP, 16, 1},
            {"flipped byte in payload_len", D_FLIP, 24, 1},
            {"flipped byte in the checksum", D_FLIP, 32, 1},
            {"flipped byte in the key", D_FLIP, key + f.key_len / 2, 1},
            {"flipped byte in the payload", D_FLIP, pay + f.payload_len / 2, 1},
            {"flipped last byte", D_FLIP, f.len - 1, 1},
            {"another format version", D_VERSION, 0, 1},
            {"another kernel's file (key mismatch)", D_OTHER_KEY, 0, 1},
            {"bytes appended", D_APPEND, 0, 1},
            {"garbage payload, right checksum", D_BAD_PAYLOAD, 0, 1},
            {"symlink to a valid copy", D_SYMLINK, 0, 0},
            {"owned by another user", D_OTHER_OWNER, 0, 0},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            run_case(root, &f, &other, &cases[i]);
    }
    free(f.data);
    free(other.data);
    ct_remove_tree(root);
    return ct_failures ? 1 : 0;
}
