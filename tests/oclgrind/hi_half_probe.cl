/* Oclgrind 21.10's --uninitialized reports "Controlflow depends on
 * uninitialized value" at the fmax below although every value is loaded from
 * an initialised buffer: the upper half of a 16-wide vector (v.hi, or any
 * shuffle of lanes 8..15) reaches a builtin as uninitialised. An 8-wide
 * vector's .hi, lane-by-lane reads and arithmetic are not affected.
 * hi_half_check.sh runs it (through probe.c) to see that this still holds. */
kernel void probe(global float *x)
{
    const float16 v = vload16(0, x);
    const float8 m = fmax(v.lo, v.hi);
    x[0] = m.s0;
}
