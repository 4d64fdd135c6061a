/* Device choice and the facts of a device that the planner and the caches use. */
#ifndef CLATTN_DEVICE_H
#define CLATTN_DEVICE_H

#include "clattn.h"

typedef enum { CLATTN__CLASS_CPU, CLATTN__CLASS_GPU, CLATTN__CLASS_ACCEL } clattn__device_class;

typedef struct clattn__device_info {
    char platform_name[128], platform_version[128];
    char name[128], vendor[128], driver_version[128], opencl_c_version[128];
    clattn__device_class dev_class;
    cl_uint compute_units;
    cl_ulong local_mem_size, global_mem_size, max_alloc;
    size_t max_wg_size;
    size_t max_item_sizes[3];
    int local_mem_is_global; /* CL_GLOBAL local memory (CPU devices) */
    cl_uint native_vec_float; /* CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT: floats a
                               * vector register holds (AVX-512 16, AVX 8) */
    cl_uint plan_vec_float;   /* the floats a register holds as the planner
                               * sizes kernels: from the device name's CPU
                               * (device_isa.c) where it names one, else the
                               * native width */
    int vector_regs;          /* an estimate of the vector registers a core has */
    int no_reqd_wg;           /* kernels must not carry reqd_work_group_size
                               * (PoCL's CPU drivers before 6.0: device.c) */
} clattn__device_info;

/* Picks the device: explicit indices, else env CLATTN_DEVICE "P:D", else the
 * first GPU, else the first device. On failure returns a status and writes a
 * message into msg. */
clattn_status clattn__choose_device(int platform, int device, cl_platform_id *out_platform,
                                    cl_device_id *out_device, char *msg, size_t msg_size);

/* Reads the device's facts. */
clattn_status clattn__device_query(cl_device_id device, clattn__device_info *info, char *msg,
                                   size_t msg_size);

/* From a CPU device's name (PoCL: "pthread-<LLVM cpu>[-model]"): the floats
 * a vector register of its code holds, how many registers it has and (cpu,
 * when not NULL) the CPU name it matched. Returns 0 and leaves all three
 * untouched when the name names no known CPU. Pure: attn-tune compiles it
 * too, to show the plan's view of a device. */
int clattn__device_isa(const char *name, unsigned *floats, int *regs, const char **cpu);

/* The registers the planner sizes kernels for: the name's CPU (a CPU device
 * whose name gives one; returns 1), else the reported native width
 * (`native`, 0 for none: 4) with 32 registers from 16 floats up, 16 below
 * (returns 0, *cpu NULL). */
int clattn__plan_registers(int is_cpu, const char *name, unsigned native, unsigned *floats,
                           int *regs, const char **cpu);

/* The device fingerprint: everything that must match for a compiled binary
 * to be reused (a driver update is a new fingerprint). One line of text. */
void clattn__device_fingerprint(const clattn__device_info *info, char *buf, size_t size);

/* The part of a fingerprint that names a device model: every field but the
 * driver-dependent versions. Tuned parameters travel between machines (and
 * driver updates) of one model; binaries never do. */
void clattn__fingerprint_model(const char *fingerprint, char *out, size_t size);

#endif
