# The VAE example's reader harness (fuzz/fuzz_readers.c), included from
# examples/vae/CMakeLists.txt (it needs the example's sources and CBLAS):
#   fuzz_readers         libFuzzer + ASan + UBSan, with -DBSVI_BUILD_FUZZ=ON (clang)
#   fuzz_readers_replay  the corpus fuzz/corpus-readers replayed as the ctest
#                        vae_fuzz_readers_corpus_replay (any compiler; tests on)
#   fuzz_readers_seeds   writes the seed inputs (fuzz/make_readers_seeds.c)
set(_fz "${PROJECT_SOURCE_DIR}/fuzz")
if(BSVI_BUILD_FUZZ AND EXISTS "${VAE_DATA_SOURCE}")
    add_executable(fuzz_readers "${_fz}/fuzz_readers.c" ${_vae_sources} ${BSVI_SOURCES})
    target_include_directories(fuzz_readers PRIVATE
        "${CMAKE_CURRENT_SOURCE_DIR}"
        "${PROJECT_SOURCE_DIR}/include"
        "${PROJECT_SOURCE_DIR}/lib"
        "${BSVI_GENERATED_DIR}")
    target_compile_definitions(fuzz_readers PRIVATE VAE_HAVE_DATA=1)
    set(_vae_fuzz_flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
                        -fno-omit-frame-pointer -g)
    target_compile_options(fuzz_readers PRIVATE ${_vae_fuzz_flags})
    target_link_options(fuzz_readers PRIVATE ${_vae_fuzz_flags})
    target_link_libraries(fuzz_readers PRIVATE bsvi::cblas ${VAE_M_LIB} ${CMAKE_DL_LIBS})
endif()
if(BSVI_BUILD_TESTS AND EXISTS "${VAE_DATA_SOURCE}" AND EXISTS "${_fz}/fuzz_readers.c")
    add_executable(fuzz_readers_replay "${_fz}/fuzz_readers.c" "${_fz}/replay_main.c")
    target_link_libraries(fuzz_readers_replay PRIVATE vae_example)
    bsvi_set_warnings(fuzz_readers_replay)
    add_executable(fuzz_readers_seeds "${_fz}/make_readers_seeds.c")
    target_link_libraries(fuzz_readers_seeds PRIVATE vae_example)
    bsvi_set_warnings(fuzz_readers_seeds)
    add_test(NAME vae_fuzz_readers_corpus_replay
             COMMAND fuzz_readers_replay "${_fz}/corpus-readers")
    set_tests_properties(vae_fuzz_readers_corpus_replay PROPERTIES
        TIMEOUT ${BSVI_TEST_TIMEOUT}
        ENVIRONMENT "OPENBLAS_NUM_THREADS=1;ASAN_OPTIONS=detect_leaks=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endif()
