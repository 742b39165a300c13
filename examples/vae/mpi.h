/* The VAE example's only contact with MPI: thin wrappers over the few collectives that
 * data-parallel training and distributed evaluation need (see "Over MPI" in README.md).
 *
 * Built with VAE_MPI defined (the vae_mpi program) they call MPI on MPI_COMM_WORLD; built
 * without it (vae, vae64, the tests) they are the single-process versions: rank 0 of 1,
 * every reduction the identity, no MPI symbol referenced. train.c and vae.c call this one
 * interface either way, and the library itself never sees MPI.
 *
 * Every collective is called by every rank in the same order. A failed collective aborts
 * the run (MPI's default error handler); the wrappers return nothing to check. The time
 * spent inside the collectives (waiting for the slowest rank included) is added to a
 * counter, vae_mpi_comm_seconds(), so that a run can split its time into compute and
 * communication. */
#ifndef VAE_MPI_H
#define VAE_MPI_H

#include <stddef.h>
#include <stdint.h>

/* 1 when built with MPI (VAE_MPI), else 0. */
int vae_mpi_enabled(void);

/* Initialises MPI (a no-op without it) and registers vae_mpi_finalize() with atexit. */
void vae_mpi_init(int *argc, char ***argv);
/* Finalises MPI once (later calls and the single-process build: nothing). */
void vae_mpi_finalize(void);
/* This process's rank and the number of processes (0 and 1 without MPI). */
int vae_mpi_rank(void);
int vae_mpi_size(void);
/* With more than one process: MPI_Abort(code), which ends every rank; else returns, so
 * that the caller exits as a single process does. */
void vae_mpi_abort(int code);

/* This rank's contiguous share [lo, hi) of n items: [r*n/N, (r+1)*n/N). */
void vae_mpi_share(size_t n, size_t *lo, size_t *hi);

/* In-place all-reduce (sum over ranks) of n values; every rank gets the same sums. */
void vae_mpi_sum_double(double *buf, size_t n);
void vae_mpi_sum_float(float *buf, size_t n);
/* In-place all-reduce of minima and maxima of one 64-bit value (the parameter checksum). */
void vae_mpi_minmax_u64(uint64_t v, uint64_t *min, uint64_t *max);
/* Root's bytes to every rank. */
void vae_mpi_bcast(void *buf, size_t bytes, int root);
/* Concatenates, in rank order, every rank's counts[rank] doubles at send into recv on rank 0
 * (recv holds the sum of counts; it is only written, and may be NULL, on other ranks). */
void vae_mpi_gather_double(const double *send, double *recv, const size_t *counts);
/* Every rank waits for all. */
void vae_mpi_barrier(void);

/* Seconds spent in the collectives above since the start (or the last reset). */
double vae_mpi_comm_seconds(void);
void vae_mpi_reset_comm_seconds(void);

#endif /* VAE_MPI_H */
