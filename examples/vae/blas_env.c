/* OpenBLAS kernel choice (see blas_env.h). */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include "blas_env.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *vae_blas_corename(void) {
    /* looked up at run time: the example links any CBLAS, and only OpenBLAS has it */
    char *(*fn)(void) = NULL;
    void *sym = dlsym(RTLD_DEFAULT, "openblas_get_corename");
    memcpy(&fn, &sym, sizeof fn);
    const char *name = fn ? fn() : NULL;
    return name ? name : "";
}

/* The kernel sets of OpenBLAS (DYNAMIC_ARCH, x86-64) that use neither AVX2 nor AVX-512. */
static int pre_avx2(const char *name) {
    static const char *const weak[] = {"Prescott", "Core2",  "Penryn",  "Dunnington",
                                       "Nehalem",  "Atom",   "Barcelona", "Opteron",
                                       "Opteron(SSE3)", "Bobcat", "Sandybridge", "katmai",
                                       "coppermine", "northwood", "banias", "yonah"};
    for (size_t i = 0; i < sizeof weak / sizeof *weak; ++i)
        if (strcmp(name, weak[i]) == 0) return 1;
    return 0;
}

void vae_blas_check_coretype(const char *prog, char **argv) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (getenv("OPENBLAS_CORETYPE")) return;
    const char *name = vae_blas_corename();
    if (!*name || !pre_avx2(name)) return;
    const char *target = NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        target = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        target = "Haswell";
    if (!target) return;
    fprintf(stderr,
            "%s: OpenBLAS does not recognise this CPU and chose its %s kernels; the CPU has %s, "
            "so restarting with OPENBLAS_CORETYPE=%s (set OPENBLAS_CORETYPE yourself to "
            "choose)\n",
            prog, name, strcmp(target, "SkylakeX") == 0 ? "AVX-512" : "AVX2 and FMA", target);
    if (setenv("OPENBLAS_CORETYPE", target, 1) == 0) {
        fflush(NULL);
        execv("/proc/self/exe", argv);
    }
    fprintf(stderr, "%s: could not restart; continuing with OpenBLAS's %s kernels\n", prog, name);
#else
    (void)prog;
    (void)argv;
#endif
}
