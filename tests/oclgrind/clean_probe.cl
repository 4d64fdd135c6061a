/* Reads and writes within the 64 floats probe.c gives it. */
kernel void probe(global float *x)
{
    x[0] = x[1] + x[63];
}
