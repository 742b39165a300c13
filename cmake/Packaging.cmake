# Debian packages (CPack DEB, one package per install component) and the uninstall target.
# Included once, at the end of the top-level CMakeLists.txt, after every install() rule.
#
#   cmake -S . -B build-deb -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr
#   cmake --build build-deb && cmake --build build-deb --target docs   # docs: optional
#   (cd build-deb && cpack -G DEB)
#   apt-get install ./build-deb/libbsvi0.2_*.deb ./build-deb/libbsvi-dev_*.deb ...
#
# Components (the install() rules of CMakeLists.txt name them):
#   runtime  libbsvi.so.X.Y.Z and its SONAME link                 -> libbsvi<SOVERSION>
#   dev      headers, libbsvi.so, libbsvi.a, bsvi.pc, CMake package -> libbsvi-dev
#   doc      README, CHANGELOG, LICENSE, docs/*.md, Doxygen HTML    -> libbsvi-doc
# Each package carries LICENSE as /usr/share/doc/<package>/copyright. The Debian-only files
# (copyright files, the doc package's tree) are EXCLUDE_FROM_ALL: a plain `cmake --install`
# installs what it did before; `cmake --install build --component doc` adds the documentation.
#
# The runtime package's name follows the SONAME, as Debian policy asks (a new SONAME is a new
# package, so programs linked against the old one keep it): libbsvi0.2 for SONAME
# libbsvi.so.0.2 (every 0.2.x release), libbsvi1 from 1.0 on (SONAME libbsvi.so.1).

set(BSVI_DEB_RUNTIME_PACKAGE "libbsvi${BSVI_SOVERSION}")
set(BSVI_DEB_DEV_PACKAGE "libbsvi-dev")
set(BSVI_DEB_DOC_PACKAGE "libbsvi-doc")
set(BSVI_DEB_MAINTAINER "libbsvi maintainers <maintainers@libbsvi.invalid>"
    CACHE STRING "Maintainer field of the Debian packages (Name <email>)")
set(BSVI_DEB_RELEASE "1" CACHE STRING "Debian revision of the packages (VERSION-RELEASE)")

# ---- Debian-only files: copyright per package, the documentation package -------------------
set(_bsvi_docroot "${CMAKE_INSTALL_DATAROOTDIR}/doc")
install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/LICENSE"
    DESTINATION "${_bsvi_docroot}/${BSVI_DEB_RUNTIME_PACKAGE}" RENAME copyright
    COMPONENT runtime EXCLUDE_FROM_ALL)
install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/LICENSE"
    DESTINATION "${_bsvi_docroot}/${BSVI_DEB_DEV_PACKAGE}" RENAME copyright
    COMPONENT dev EXCLUDE_FROM_ALL)
install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/LICENSE"
    DESTINATION "${_bsvi_docroot}/${BSVI_DEB_DOC_PACKAGE}" RENAME copyright
    COMPONENT doc EXCLUDE_FROM_ALL)
install(FILES
    "${CMAKE_CURRENT_SOURCE_DIR}/README.md"
    "${CMAKE_CURRENT_SOURCE_DIR}/CHANGELOG.md"
    "${CMAKE_CURRENT_SOURCE_DIR}/LICENSE"
    DESTINATION "${_bsvi_docroot}/${BSVI_DEB_DOC_PACKAGE}"
    COMPONENT doc EXCLUDE_FROM_ALL)
file(GLOB _bsvi_doc_md "${CMAKE_CURRENT_SOURCE_DIR}/docs/*.md")
install(FILES ${_bsvi_doc_md}
    DESTINATION "${_bsvi_docroot}/${BSVI_DEB_DOC_PACKAGE}/docs"
    COMPONENT doc EXCLUDE_FROM_ALL)
if(IS_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}/docs/img")   # the figures docs/*.md show
    install(DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}/docs/img"
        DESTINATION "${_bsvi_docroot}/${BSVI_DEB_DOC_PACKAGE}/docs"
        COMPONENT doc EXCLUDE_FROM_ALL)
endif()
# The Doxygen reference, when the docs target has been built before cpack / cmake --install.
if(DEFINED BSVI_DOCS_OUTPUT_DIR)
    install(DIRECTORY "${BSVI_DOCS_OUTPUT_DIR}/html"
        DESTINATION "${_bsvi_docroot}/${BSVI_DEB_DOC_PACKAGE}"
        COMPONENT doc EXCLUDE_FROM_ALL OPTIONAL)
endif()

# ---- CPack: package metadata --------------------------------------------------------------
set(CPACK_PACKAGE_NAME "libbsvi")
set(CPACK_PACKAGE_VENDOR "The libbsvi authors")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
# Each package's synopsis is the first line of its CPACK_DEBIAN_<COMPONENT>_DESCRIPTION:
# CPackDeb prepends CPACK_PACKAGE_DESCRIPTION_SUMMARY to every description unless it is
# CPack's default value, which is therefore kept (the project's description would
# otherwise become the synopsis of all three packages).
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${CMAKE_PROJECT_NAME} built using CMake")
set(CPACK_PACKAGE_CONTACT "${BSVI_DEB_MAINTAINER}")
set(CPACK_RESOURCE_FILE_LICENSE "${CMAKE_CURRENT_SOURCE_DIR}/LICENSE")
set(CPACK_RESOURCE_FILE_README "${CMAKE_CURRENT_SOURCE_DIR}/README.md")
set(CPACK_STRIP_FILES ON)                       # Debian ships stripped libraries
find_program(BSVI_DPKG dpkg)
if(BSVI_DPKG)
    set(CPACK_GENERATOR "DEB")
else()
    set(CPACK_GENERATOR "TGZ")
endif()
# `make package_source`: the tracked sources, not build trees or run outputs.
set(CPACK_SOURCE_GENERATOR "TGZ")
string(REGEX REPLACE "([][+.*()^$?|\\\\])" "\\\\\\1" _bsvi_src_re "${CMAKE_CURRENT_SOURCE_DIR}")
set(CPACK_SOURCE_IGNORE_FILES "^${_bsvi_src_re}/\\\\.git/" "^${_bsvi_src_re}/build[^/]*/"
    "^${_bsvi_src_re}/_build/" "^${_bsvi_src_re}/runs/" "^${_bsvi_src_re}/data-cache/")

set(CPACK_COMPONENTS_ALL runtime dev doc)
set(CPACK_COMPONENT_RUNTIME_DISPLAY_NAME "Shared library")
set(CPACK_COMPONENT_DEV_DISPLAY_NAME "Development files")
set(CPACK_COMPONENT_DEV_DEPENDS runtime)
set(CPACK_COMPONENT_DOC_DISPLAY_NAME "Documentation")

# ---- CPack DEB -------------------------------------------------------------------------------
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)         # NAME_VERSION-RELEASE_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_RELEASE "${BSVI_DEB_RELEASE}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${BSVI_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SOURCE "libbsvi")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Depends from dpkg-shlibdeps (libc6). The runtime package's shlibs file (written here, not by
# CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS, which would run `file` on each of the doc package's
# ~400 files) gives packages built against libbsvi "Depends: libbsvi0.2 (>= 0.2.0)" from
# their own dpkg-shlibdeps.
find_program(BSVI_DPKG_SHLIBDEPS dpkg-shlibdeps)   # Debian: dpkg-dev; it also needs `file`
if(BSVI_DPKG_SHLIBDEPS)
    set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
    set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
    set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "libc6")
endif()
set(_bsvi_shlibs "${CMAKE_CURRENT_BINARY_DIR}/deb-control/runtime/shlibs")
file(WRITE "${_bsvi_shlibs}.tmp"
    "libbsvi ${BSVI_SOVERSION} ${BSVI_DEB_RUNTIME_PACKAGE} (>= ${PROJECT_VERSION})\n")
configure_file("${_bsvi_shlibs}.tmp" "${_bsvi_shlibs}" COPYONLY)   # touched only on change
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA "${_bsvi_shlibs}")
set(_bsvi_deb_version "${PROJECT_VERSION}-${BSVI_DEB_RELEASE}")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME "${BSVI_DEB_RUNTIME_PACKAGE}")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION "Buffered stochastic variational inference - shared library
libbsvi refines an amortised encoder's Gaussian proposal with k steps of
stochastic variational inference, keeps every step's importance weight in a
buffer and turns it into a tighter lower bound on log p(x), with the decoder
targets and encoder gradient a host needs to train a variational autoencoder
(Shu, Bui, Whang and Ermon, AISTATS 2019).
.
This package contains the shared library libbsvi.so.${BSVI_SOVERSION}.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME "${BSVI_DEB_DEV_PACKAGE}")
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "${BSVI_DEB_RUNTIME_PACKAGE} (= ${_bsvi_deb_version})")
set(CPACK_DEBIAN_DEV_PACKAGE_SUGGESTS "${BSVI_DEB_DOC_PACKAGE}, pkg-config, cmake")
set(CPACK_DEBIAN_DEV_DESCRIPTION "Buffered stochastic variational inference - development files
libbsvi is a C11 library for Buffered Stochastic Variational Inference.
.
This package contains the C headers (and the C++17 wrapper bsvi.hpp), the
libbsvi.so link, the static library libbsvi.a, the pkg-config file bsvi.pc
and the CMake package (find_package(bsvi)).")

set(CPACK_DEBIAN_DOC_PACKAGE_NAME "${BSVI_DEB_DOC_PACKAGE}")
set(CPACK_DEBIAN_DOC_PACKAGE_SECTION doc)
set(CPACK_DEBIAN_DOC_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_DOC_PACKAGE_SHLIBDEPS OFF)
set(CPACK_DEBIAN_DOC_DESCRIPTION "Buffered stochastic variational inference - documentation
libbsvi is a C11 library for Buffered Stochastic Variational Inference.
.
This package contains the README, the changelog, the design, reliability,
performance, scaling and results notes and, when it was built, the Doxygen
HTML reference of the C API, in /usr/share/doc/${BSVI_DEB_DOC_PACKAGE}.")

if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    message(STATUS "libbsvi: cpack -G DEB packages install into /usr: configure with "
                   "-DCMAKE_INSTALL_PREFIX=/usr (multiarch libdir) for them")
endif()
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")

include(CPack)

# ---- uninstall: removes what the last `cmake --install` of this build tree installed -----------
if(NOT TARGET uninstall)
    configure_file("${CMAKE_CURRENT_LIST_DIR}/uninstall.cmake.in"
        "${CMAKE_CURRENT_BINARY_DIR}/bsvi-uninstall.cmake" @ONLY)
    add_custom_target(uninstall
        COMMAND ${CMAKE_COMMAND} -P "${CMAKE_CURRENT_BINARY_DIR}/bsvi-uninstall.cmake"
        COMMENT "Removing the files listed in install_manifest.txt"
        VERBATIM)
endif()
