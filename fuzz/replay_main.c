/*
 * replay_main.c: runs fuzz_api.c's LLVMFuzzerTestOneInput on files, without libFuzzer.
 *
 *   fuzz_replay FILE_OR_DIR...
 *
 * Used by the ctest `fuzz_corpus_replay` (every committed corpus input is a regression
 * test, under any compiler, the sanitizer build and valgrind). Exits non-zero when a path
 * cannot be read or holds no input; an invariant violation aborts.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "fuzz_replay: cannot open %s\n", path);
        return -1;
    }
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            uint8_t *nb = (uint8_t *)realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(fp);
                return -1;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) break;
    }
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 1;
}

static int run_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "fuzz_replay: no such path %s\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) return run_file(path);
    DIR *dir = opendir(path);
    if (!dir) return -1;
    int count = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.') continue;
        size_t len = strlen(path) + strlen(de->d_name) + 2;
        char *full = (char *)malloc(len);
        if (!full) {
            closedir(dir);
            return -1;
        }
        snprintf(full, len, "%s/%s", path, de->d_name);
        int r = run_file(full);
        free(full);
        if (r < 0) {
            closedir(dir);
            return -1;
        }
        count += r;
    }
    closedir(dir);
    return count;
}

int main(int argc, char **argv) {
    int total = 0;
    for (int i = 1; i < argc; ++i) {
        int r = run_path(argv[i]);
        if (r < 0) return 2;
        total += r;
    }
    printf("fuzz_replay: %d inputs, no invariant violated\n", total);
    return total > 0 ? 0 : 3;
}
