/* attn-tune's subcommands, each in its own file; attn-tune.c dispatches to
 * them. */
#ifndef ATTN_TUNE_H
#define ATTN_TUNE_H

#include "tool.h"

int cmd_devices(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_clear(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* The hidden child of bench's first-call measurement. */
int cmd_first_call(int argc, char **argv);

#endif /* ATTN_TUNE_H */
