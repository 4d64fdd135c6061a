/* attn-tune: the command line over clattn. This file holds the dispatch;
 * each subcommand lives in its own file, and what they share in
 * tool_context.c and tool_util.c (tool.h). */
#include "attn_tune.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char k_usage[] =
    "usage: attn-tune <command> [options]\n"
    "\n"
    "Commands:\n"
    "  devices   list every OpenCL platform and device, marking clattn's default\n"
    "  verify    check every path, dtype and mask against a double-precision\n"
    "            reference on one device\n"
    "  tune      measure kernel configurations for a set of shapes and store the\n"
    "            winners in the tuning db of the device\n"
    "  show      list the tuning db entries that apply to a device\n"
    "  export    write a device's tuning db to a file\n"
    "  import    merge a tuning db file (same device model) into the user db\n"
    "  clear     empty the on-disk cache (program binaries and tuning dbs)\n"
    "  bench     time the benchmark shapes: tuned AUTO against the untuned\n"
    "            defaults and every explicit path; first-call time cold vs warm\n"
    "\n"
    "Options:\n"
    "  -h, --help   this text ('attn-tune <command> --help' for a command's own)\n"
    "  --version    the versions of attn-tune and of the clattn library it runs\n"
    "\n"
    "Devices are named P:D (platform index, device index) as 'attn-tune devices'\n"
    "lists them. Without --device clattn chooses: the environment variable\n"
    "CLATTN_DEVICE=P:D, else the first GPU, else the first device.\n"
    "The cache (kernel binaries, tuning dbs) lives under $CLATTN_CACHE_DIR, else\n"
    "$XDG_CACHE_HOME/clattn, else ~/.cache/clattn; CLATTN_CACHE_DIR=off disables it.\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

int main(int argc, char **argv)
{
    const char *cmd;
    if (argc < 2) {
        fputs(k_usage, stderr);
        return TOOL_EXIT_USAGE;
    }
    cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(k_usage, stdout);
        return TOOL_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("attn-tune %d.%d.%d, clattn library %s\n", CLATTN_VERSION_MAJOR,
               CLATTN_VERSION_MINOR, CLATTN_VERSION_PATCH, clattn_version());
        return TOOL_EXIT_OK;
    }
    if (strcmp(cmd, "devices") == 0) return cmd_devices(argc - 1, argv + 1);
    if (strcmp(cmd, "verify") == 0) return cmd_verify(argc - 1, argv + 1);
    if (strcmp(cmd, "tune") == 0) return cmd_tune(argc - 1, argv + 1);
    if (strcmp(cmd, "show") == 0) return cmd_show(argc - 1, argv + 1);
    if (strcmp(cmd, "export") == 0) return cmd_export(argc - 1, argv + 1);
    if (strcmp(cmd, "import") == 0) return cmd_import(argc - 1, argv + 1);
    if (strcmp(cmd, "clear") == 0) return cmd_clear(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "__first-call") == 0) return cmd_first_call(argc - 1, argv + 1);
    fprintf(stderr, "attn-tune: unknown command '%s'\n\n%s", cmd, k_usage);
    return TOOL_EXIT_USAGE;
}
