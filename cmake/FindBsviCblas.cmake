# Locate a CBLAS for libbsvi's examples and benchmarks (included from the top-level
# CMakeLists.txt when they are built; the library itself links no BLAS).
#
# BSVI_CBLAS selects: AUTO (OpenBLAS when present, the reference CBLAS
# otherwise), OpenBLAS, or Reference. Sets:
#   BSVI_CBLAS_VENDOR         "OpenBLAS" or "Reference"
#   BSVI_CBLAS_INCLUDE_DIRS   directory holding the cblas.h to use (may be empty
#                             when cblas.h is on the default include path)
#   BSVI_CBLAS_LIBRARIES      absolute library paths
# Every candidate is checked by linking a call to cblas_ddot.

include(CheckCSourceCompiles)
include(CMakePushCheckState)

set(_bsvi_cblas_probe "
#include <cblas.h>
int main(void) {
    double x[2] = {1.0, 2.0};
    double y[2] = {3.0, 4.0};
    return cblas_ddot(2, x, 1, y, 1) == 11.0 ? 0 : 1;
}")

# _bsvi_cblas_try(<result-var> <include-dirs> <libraries>)
function(_bsvi_cblas_try result incdirs libs)
    cmake_push_check_state(RESET)
    set(CMAKE_REQUIRED_QUIET ON)
    set(CMAKE_REQUIRED_INCLUDES ${incdirs})
    set(CMAKE_REQUIRED_LIBRARIES ${libs} m)
    string(MAKE_C_IDENTIFIER "BSVI_CBLAS_LINKS_${libs}" _var)
    check_c_source_compiles("${_bsvi_cblas_probe}" ${_var})
    set(${result} ${${_var}} PARENT_SCOPE)
    cmake_pop_check_state()
endfunction()

set(BSVI_CBLAS_VENDOR "")
string(TOUPPER "${BSVI_CBLAS}" _bsvi_cblas_want)

# ---- OpenBLAS ----------------------------------------------------------------
if(_bsvi_cblas_want STREQUAL "AUTO" OR _bsvi_cblas_want STREQUAL "OPENBLAS")
    set(_ob_inc "")
    set(_ob_lib "")
    find_package(PkgConfig QUIET)
    if(PKG_CONFIG_FOUND)
        pkg_check_modules(BSVI_PC_OPENBLAS QUIET openblas)
        if(BSVI_PC_OPENBLAS_FOUND)
            set(_ob_inc ${BSVI_PC_OPENBLAS_INCLUDE_DIRS})
            find_library(BSVI_OPENBLAS_LIBRARY NAMES openblas
                         HINTS ${BSVI_PC_OPENBLAS_LIBRARY_DIRS} NO_DEFAULT_PATH)
        endif()
    endif()
    if(NOT BSVI_OPENBLAS_LIBRARY)
        find_library(BSVI_OPENBLAS_LIBRARY NAMES openblas openblasp openblaso
                     PATH_SUFFIXES openblas-pthread openblas-openmp openblas-serial openblas)
    endif()
    if(NOT _ob_inc)
        find_path(BSVI_OPENBLAS_INCLUDE_DIR cblas.h
                  PATH_SUFFIXES openblas-pthread openblas-openmp openblas-serial openblas
                                x86_64-linux-gnu/openblas-pthread
                                x86_64-linux-gnu/openblas-openmp
                                x86_64-linux-gnu/openblas-serial
                                aarch64-linux-gnu/openblas-pthread)
        if(BSVI_OPENBLAS_INCLUDE_DIR)
            set(_ob_inc ${BSVI_OPENBLAS_INCLUDE_DIR})
        endif()
    endif()
    if(BSVI_OPENBLAS_LIBRARY)
        _bsvi_cblas_try(_ok "${_ob_inc}" "${BSVI_OPENBLAS_LIBRARY}")
        if(_ok)
            set(BSVI_CBLAS_VENDOR "OpenBLAS")
            set(BSVI_CBLAS_INCLUDE_DIRS ${_ob_inc})
            set(BSVI_CBLAS_LIBRARIES ${BSVI_OPENBLAS_LIBRARY})
        endif()
    endif()
    if(NOT BSVI_CBLAS_VENDOR AND _bsvi_cblas_want STREQUAL "OPENBLAS")
        message(FATAL_ERROR "BSVI_CBLAS=OpenBLAS but no usable OpenBLAS was found "
                            "(Debian: apt-get install libopenblas-dev)")
    endif()
endif()

# ---- reference CBLAS (Debian libblas-dev: libblas.so carries cblas_*) --------
if(NOT BSVI_CBLAS_VENDOR)
    # Debian installs the reference header as cblas-netlib.h (cblas.h is an
    # alternatives link to it or to OpenBLAS's); the examples include <cblas.h>,
    # so look for a directory with cblas.h.
    find_path(BSVI_REF_CBLAS_INCLUDE_DIR cblas.h
              PATH_SUFFIXES x86_64-linux-gnu aarch64-linux-gnu cblas)
    set(_ref_inc "")
    if(BSVI_REF_CBLAS_INCLUDE_DIR)
        set(_ref_inc ${BSVI_REF_CBLAS_INCLUDE_DIR})
    endif()
    # When Debian's netlib header exists, make <cblas.h> resolve to it even if
    # the cblas.h alternative currently points at OpenBLAS's header.
    find_file(BSVI_REF_CBLAS_NETLIB_HEADER cblas-netlib.h
              PATH_SUFFIXES x86_64-linux-gnu aarch64-linux-gnu)
    if(BSVI_REF_CBLAS_NETLIB_HEADER)
        set(_shim "${CMAKE_CURRENT_BINARY_DIR}/generated/cblas-reference")
        file(WRITE "${_shim}/cblas.h"
             "/* Generated: the reference (netlib) CBLAS header. */\n"
             "#include \"${BSVI_REF_CBLAS_NETLIB_HEADER}\"\n")
        set(_ref_inc "${_shim}")
    endif()
    # Prefer the reference implementation's own directory (Debian puts the
    # alternatives-managed libblas.so in the multiarch dir, which may point at
    # OpenBLAS; ${multiarch}/blas/libblas.so is always the netlib one).
    foreach(_cand cblas blas)
        find_library(BSVI_REF_${_cand}_LIBRARY NAMES ${_cand}
                     PATH_SUFFIXES blas x86_64-linux-gnu/blas aarch64-linux-gnu/blas)
        if(BSVI_REF_${_cand}_LIBRARY)
            _bsvi_cblas_try(_ok "${_ref_inc}" "${BSVI_REF_${_cand}_LIBRARY}")
            if(_ok)
                set(BSVI_CBLAS_VENDOR "Reference")
                set(BSVI_CBLAS_INCLUDE_DIRS ${_ref_inc})
                set(BSVI_CBLAS_LIBRARIES ${BSVI_REF_${_cand}_LIBRARY})
                break()
            endif()
        endif()
    endforeach()
endif()

if(NOT BSVI_CBLAS_VENDOR)
    message(FATAL_ERROR "No CBLAS found. On Debian: apt-get install libopenblas-dev "
                        "(preferred) or libblas-dev (reference CBLAS).")
endif()
message(STATUS "libbsvi: CBLAS vendor: ${BSVI_CBLAS_VENDOR}")
