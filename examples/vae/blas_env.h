/* A work-around for OpenBLAS builds that do not know the CPU they run on.
 *
 * OpenBLAS picks its kernels at load time from the CPU model. A release older
 * than the CPU (Debian 12's 0.3.21 on Intel Sapphire/Emerald Rapids, for one)
 * does not recognise the model and falls back to its Prescott (SSE3) kernels:
 * measured here, cblas_sgemm at 1000^3 ran at 12 GFLOP/s with them and 34 GFLOP/s
 * with the SkylakeX kernels on the same busy core (dgemm 6 against 18). The choice
 * can only be changed before the library loads, through OPENBLAS_CORETYPE. */
#ifndef VAE_BLAS_ENV_H
#define VAE_BLAS_ENV_H

/* If the CBLAS linked is OpenBLAS, OPENBLAS_CORETYPE is not set, OpenBLAS chose a
 * pre-AVX2 kernel set and the CPU has AVX-512 (F, BW, DQ, VL) or AVX2 with FMA,
 * sets OPENBLAS_CORETYPE to SkylakeX or Haswell, says so on stderr (prefixed with
 * `prog`) and re-executes the program (/proc/self/exe) with the same arguments.
 * Returns only when nothing needed changing or the re-execution failed (then with
 * a warning). Never changes anything when the user set OPENBLAS_CORETYPE. */
void vae_blas_check_coretype(const char *prog, char **argv);

/* The kernel set OpenBLAS uses ("SkylakeX", "Prescott", ...), or "" when the CBLAS
 * is not OpenBLAS. */
const char *vae_blas_corename(void);

#endif /* VAE_BLAS_ENV_H */
