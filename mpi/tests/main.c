/* clattn_mpi_tests CASE...: run under mpirun; every rank runs each case.
 * Exit status 0 when every rank passed every case. */
#include <stdio.h>
#include <stdlib.h>

#include "mpi_test.h"

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    mt_env e;
    e.comm = MPI_COMM_WORLD;
    MPI_Comm_rank(e.comm, &e.rank);
    MPI_Comm_size(e.comm, &e.nranks);
    /* A failing rank must not end the others: they are expected to return. */
    MPI_Comm_set_errhandler(e.comm, MPI_ERRORS_RETURN);
    int failed = 0;
    const clattn_status st = clattn_context_create(NULL, &e.ctx);
    if (st != CLATTN_OK) {
        fprintf(stderr, "rank %d: clattn_context_create: %s\n", e.rank,
                clattn_status_string(st));
        failed = 1;
    }
    /* every case is collective: all ranks run them or none does */
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, e.comm);
    for (int i = 1; i < argc && !failed; ++i) {
        const int r = mt_run_case(&e, argv[i]);
        if (r < 0) {
            fprintf(stderr, "unknown case %s\n", argv[i]);
            failed = 1;
        } else {
            failed |= r;
        }
    }
    int any = failed;
    MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_MAX, e.comm);
    if (e.rank == 0)
        printf("%s on %d ranks\n", any ? "FAILED" : "passed", e.nranks);
    clattn_context_destroy(e.ctx);
    MPI_Finalize();
    return failed ? 1 : 0;
}
