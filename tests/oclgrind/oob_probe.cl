/* Reads 4 floats past the end of the 64 probe.c gives it: Oclgrind must
 * report it (selftest.sh runs it in a first context, clean_probe.cl after). */
kernel void probe(global float *x)
{
    x[0] = x[64] + x[67];
}
