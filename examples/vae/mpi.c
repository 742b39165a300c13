/* MPI wrappers of the VAE example (see mpi.h): MPI calls with VAE_MPI, single-process
 * versions without it. */
#define _POSIX_C_SOURCE 200809L

#include "mpi.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef VAE_MPI
/* The system header by its path (VAE_MPI_HEADER, set by CMake): "mpi.h" and <mpi.h> would
 * find this directory's mpi.h, which is on the include path. */
#ifdef VAE_MPI_HEADER
#include VAE_MPI_HEADER
#else
#error "VAE_MPI needs VAE_MPI_HEADER, the path of the system's mpi.h"
#endif
#endif

static double comm_seconds = 0.0;

double vae_mpi_comm_seconds(void) { return comm_seconds; }
void vae_mpi_reset_comm_seconds(void) { comm_seconds = 0.0; }

void vae_mpi_share(size_t n, size_t *lo, size_t *hi) {
    const size_t r = (size_t)vae_mpi_rank(), N = (size_t)vae_mpi_size();
    *lo = r * n / N;
    *hi = (r + 1) * n / N;
}

#ifdef VAE_MPI

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int initialised = 0, finalised = 0, rank_ = 0, size_ = 1;

int vae_mpi_enabled(void) { return 1; }

void vae_mpi_init(int *argc, char ***argv) {
    if (initialised) return;
    MPI_Init(argc, argv);
    initialised = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    atexit(vae_mpi_finalize);
}

void vae_mpi_finalize(void) {
    if (!initialised || finalised) return;
    finalised = 1;
    MPI_Finalize();
}

int vae_mpi_rank(void) { return rank_; }
int vae_mpi_size(void) { return size_; }

void vae_mpi_abort(int code) {
    if (initialised && !finalised && size_ > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

/* MPI counts are ints: long buffers go in pieces. */
#define PIECE ((size_t)1 << 30)

void vae_mpi_sum_double(double *buf, size_t n) {
    if (size_ == 1) return;
    const double t0 = now();
    for (size_t i = 0; i < n; i += PIECE) {
        const size_t m = n - i < PIECE ? n - i : PIECE;
        MPI_Allreduce(MPI_IN_PLACE, buf + i, (int)m, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
    comm_seconds += now() - t0;
}

void vae_mpi_sum_float(float *buf, size_t n) {
    if (size_ == 1) return;
    const double t0 = now();
    for (size_t i = 0; i < n; i += PIECE) {
        const size_t m = n - i < PIECE ? n - i : PIECE;
        MPI_Allreduce(MPI_IN_PLACE, buf + i, (int)m, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
    comm_seconds += now() - t0;
}

void vae_mpi_minmax_u64(uint64_t v, uint64_t *min, uint64_t *max) {
    *min = *max = v;
    if (size_ == 1) return;
    const double t0 = now();
    MPI_Allreduce(MPI_IN_PLACE, min, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, max, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    comm_seconds += now() - t0;
}

void vae_mpi_bcast(void *buf, size_t bytes, int root) {
    if (size_ == 1) return;
    const double t0 = now();
    for (size_t i = 0; i < bytes; i += PIECE) {
        const size_t m = bytes - i < PIECE ? bytes - i : PIECE;
        MPI_Bcast((char *)buf + i, (int)m, MPI_BYTE, root, MPI_COMM_WORLD);
    }
    comm_seconds += now() - t0;
}

void vae_mpi_gather_double(const double *send, double *recv, const size_t *counts) {
    if (size_ == 1) {
        if (counts[0] > 0 && recv != send) memmove(recv, send, counts[0] * sizeof *recv);
        return;
    }
    const double t0 = now();
    int *rc = NULL, *displ = NULL;
    size_t total = 0;
    for (int r = 0; r < size_; ++r) total += counts[r];
    if (total > (size_t)INT_MAX) MPI_Abort(MPI_COMM_WORLD, 1); /* not for this example's sizes */
    if (rank_ == 0) {
        rc = malloc((size_t)size_ * sizeof *rc);
        displ = malloc((size_t)size_ * sizeof *displ);
        if (!rc || !displ) MPI_Abort(MPI_COMM_WORLD, 1);
        size_t off = 0;
        for (int r = 0; r < size_; ++r) {
            rc[r] = (int)counts[r];
            displ[r] = (int)off;
            off += counts[r];
        }
    }
    MPI_Gatherv(send, (int)counts[rank_], MPI_DOUBLE, recv, rc, displ, MPI_DOUBLE, 0,
                MPI_COMM_WORLD);
    free(rc);
    free(displ);
    comm_seconds += now() - t0;
}

void vae_mpi_barrier(void) {
    if (size_ == 1) return;
    const double t0 = now();
    MPI_Barrier(MPI_COMM_WORLD);
    comm_seconds += now() - t0;
}

#else /* one process */

int vae_mpi_enabled(void) { return 0; }
void vae_mpi_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
}
void vae_mpi_finalize(void) {}
int vae_mpi_rank(void) { return 0; }
int vae_mpi_size(void) { return 1; }
void vae_mpi_abort(int code) { (void)code; }
void vae_mpi_sum_double(double *buf, size_t n) {
    (void)buf;
    (void)n;
}
void vae_mpi_sum_float(float *buf, size_t n) {
    (void)buf;
    (void)n;
}
void vae_mpi_minmax_u64(uint64_t v, uint64_t *min, uint64_t *max) { *min = *max = v; }
void vae_mpi_bcast(void *buf, size_t bytes, int root) {
    (void)buf;
    (void)bytes;
    (void)root;
}
void vae_mpi_gather_double(const double *send, double *recv, const size_t *counts) {
    if (counts[0] > 0 && recv != send) memmove(recv, send, counts[0] * sizeof *recv);
}
void vae_mpi_barrier(void) {}

#endif
