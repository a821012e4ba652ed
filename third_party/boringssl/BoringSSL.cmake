# third_party/boringssl/BoringSSL.cmake: pick the BoringSSL peerproxy builds
# against and describe it as one INTERFACE target.
#
#   include(third_party/boringssl/BoringSSL.cmake)
#   target_link_libraries(peerproxy PRIVATE peerproxy_boringssl)
#
# Cache variables read:
#   PEERPROXY_BORINGSSL  source (default): BoringSSL built from Debian's source
#                          package by third_party/boringssl/build (static,
#                          Release, with assembly); built at configure time
#                          the first time, then taken from the cache.
#                        system: Debian's android-libboringssl shared library
#                          (built with OPENSSL_SMALL: slow P-256).
#   BORINGSSL_ROOT       a BoringSSL of your own: DIR/include plus libraries in
#                          DIR/lib or DIR/build (static preferred).  When set
#                          it wins over PEERPROXY_BORINGSSL.
#
# Variable read (set by the top-level CMakeLists.txt from PEERPROXY_SANITIZE):
#   PEERPROXY_SANITIZER  thread: with source, the ThreadSanitizer variant of
#                          the source build (its own cache entry, built the
#                          first time), so that TSan sees the library's
#                          memory accesses and synchronisation too.
#
# Defines:
#   target peerproxy_boringssl (INTERFACE): include directory, libssl +
#     libcrypto + Threads::Threads, and the compile definitions
#       PEERPROXY_BORINGSSL_FLAVOR  "source" | "system" | "custom"
#       PEERPROXY_BORINGSSL_DESC    a human-readable one-line description
#   variables (in the including scope):
#     PEERPROXY_BSSL_TOOL              the matching bssl command-line tool
#                                      (empty if a custom root has none)
#     PEERPROXY_BORINGSSL_FLAVOR       as above, unquoted
#     PEERPROXY_BORINGSSL_DESC         as above, unquoted
#     PEERPROXY_BORINGSSL_INCLUDE_DIR  the directory holding openssl/
#
# Include order matters: OpenSSL 3's headers sit in /usr/include/openssl.  The
# BoringSSL directory is added as a plain -I (searched before the compiler's
# system directories, /usr/include among them) and BEFORE the target's other
# include directories.  Keep it that way: do not re-add it as SYSTEM, and do
# not put a directory that holds an openssl/ of another library ahead of it
# (link peerproxy_boringssl before other libraries so its -I comes first).
include_guard(GLOBAL)

set(PEERPROXY_BORINGSSL "source" CACHE STRING
  "BoringSSL to use: source (built from Debian's source package, static) or system (Debian's android-libboringssl, shared)")
set_property(CACHE PEERPROXY_BORINGSSL PROPERTY STRINGS source system)
set(BORINGSSL_ROOT "" CACHE PATH
  "A BoringSSL of your own (DIR/include, DIR/lib or DIR/build); overrides PEERPROXY_BORINGSSL")

find_package(Threads REQUIRED)

# _peerproxy_boringssl_check_headers(INCDIR HINT): fail configuration unless
# INCDIR/openssl/base.h exists and is BoringSSL's.
function(_peerproxy_boringssl_check_headers incdir hint)
  set(base "${incdir}/openssl/base.h")
  if(NOT EXISTS "${base}")
    if(EXISTS "${incdir}/openssl/opensslv.h")
      message(FATAL_ERROR "BoringSSL: the headers in ${incdir} are not BoringSSL: "
        "openssl/opensslv.h without openssl/base.h is OpenSSL. ${hint}")
    endif()
    message(FATAL_ERROR "BoringSSL: ${base} not found. ${hint}")
  endif()
  file(STRINGS "${base}" is_boringssl
    REGEX "^#[ \t]*define[ \t]+OPENSSL_IS_BORINGSSL")
  if(NOT is_boringssl)
    message(FATAL_ERROR
      "BoringSSL: the headers in ${incdir} are not BoringSSL: openssl/base.h "
      "does not define OPENSSL_IS_BORINGSSL (OpenSSL's headers?). ${hint}")
  endif()
endfunction()

# _peerproxy_boringssl_info(FILE KEY OUTVAR): the value of "KEY: value" in a
# BUILD-INFO file written by third_party/boringssl/build, or "".
function(_peerproxy_boringssl_info file key outvar)
  set(value "")
  if(EXISTS "${file}")
    file(STRINGS "${file}" line REGEX "^${key}: " LIMIT_COUNT 1)
    if(line)
      string(REGEX REPLACE "^${key}: " "" value "${line}")
    endif()
  endif()
  set(${outvar} "${value}" PARENT_SCOPE)
endfunction()

# _peerproxy_boringssl_find_lib(NAME OUTVAR DIRS...): DIR/libNAME.a if any
# DIR has it, else DIR/libNAME.so, else "".
function(_peerproxy_boringssl_find_lib name outvar)
  find_library(found NAMES lib${name}.a NO_CACHE NO_DEFAULT_PATH PATHS ${ARGN})
  if(NOT found)
    find_library(found NAMES lib${name}.so NO_CACHE NO_DEFAULT_PATH PATHS ${ARGN})
  endif()
  if(NOT found)
    set(found "")
  endif()
  set(${outvar} "${found}" PARENT_SCOPE)
endfunction()

set(_pp_libs "")
set(_pp_link_options "")
set(_pp_rpath_dirs "")

if(NOT "${BORINGSSL_ROOT}" STREQUAL "")
  # ---- custom: the user's own build ---------------------------------------
  set(PEERPROXY_BORINGSSL_FLAVOR "custom")
  set(_pp_root "${BORINGSSL_ROOT}")
  set(_pp_hint "BORINGSSL_ROOT=${_pp_root} must hold include/openssl/*.h and libssl/libcrypto in lib/ or build/.")
  set(PEERPROXY_BORINGSSL_INCLUDE_DIR "${_pp_root}/include")
  _peerproxy_boringssl_check_headers("${PEERPROXY_BORINGSSL_INCLUDE_DIR}" "${_pp_hint}")
  set(_pp_dirs "${_pp_root}/lib" "${_pp_root}/lib64" "${_pp_root}/build"
    "${_pp_root}/build/ssl" "${_pp_root}/build/crypto")
  _peerproxy_boringssl_find_lib(ssl _pp_ssl ${_pp_dirs})
  _peerproxy_boringssl_find_lib(crypto _pp_crypto ${_pp_dirs})
  if(NOT _pp_ssl OR NOT _pp_crypto)
    message(FATAL_ERROR "BoringSSL: libssl and libcrypto not found in ${_pp_root}/lib, "
      "${_pp_root}/build (or its ssl/ and crypto/). ${_pp_hint}")
  endif()
  set(_pp_libs "${_pp_ssl}" "${_pp_crypto}")
  set(_pp_kind "static")
  foreach(_pp_lib IN ITEMS ${_pp_libs})
    if(_pp_lib MATCHES "\\.so$")
      set(_pp_kind "shared")
      get_filename_component(_pp_libdir "${_pp_lib}" DIRECTORY)
      list(APPEND _pp_link_options "LINKER:-rpath,${_pp_libdir}")
      list(APPEND _pp_rpath_dirs "${_pp_libdir}")
    endif()
  endforeach()
  find_program(PEERPROXY_BSSL_TOOL NAMES bssl NO_CACHE NO_DEFAULT_PATH
    PATHS "${_pp_root}/bin" "${_pp_root}/build" "${_pp_root}/build/tool")
  if(NOT PEERPROXY_BSSL_TOOL)
    set(PEERPROXY_BSSL_TOOL "")
  endif()
  _peerproxy_boringssl_info("${_pp_root}/BUILD-INFO" version _pp_version)
  if(_pp_version)
    set(_pp_version " ${_pp_version}")
  endif()
  set(PEERPROXY_BORINGSSL_DESC "BoringSSL${_pp_version} from BORINGSSL_ROOT=${_pp_root}, ${_pp_kind}")

elseif(PEERPROXY_BORINGSSL STREQUAL "source")
  # ---- source: Debian's source package, built by ./build, cached ------------
  set(PEERPROXY_BORINGSSL_FLAVOR "source")
  set(_pp_script "${CMAKE_CURRENT_LIST_DIR}/build")
  find_program(_PP_BASH bash REQUIRED NO_CACHE)
  set(_pp_variant "")
  if(PEERPROXY_SANITIZER STREQUAL "thread")
    set(_pp_variant --sanitize thread)
  endif()
  # The script answers at once when its cache is complete; otherwise it
  # builds (a couple of minutes), printing progress on stderr.
  execute_process(
    COMMAND "${_PP_BASH}" "${_pp_script}" ${_pp_variant} --print-prefix
    OUTPUT_VARIABLE _pp_prefix
    OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _pp_rc)
  if(NOT _pp_rc EQUAL 0 OR "${_pp_prefix}" STREQUAL "")
    message(FATAL_ERROR "BoringSSL: '${_pp_script} --print-prefix' failed "
      "(${_pp_rc}); see its messages above. Alternatives: -DPEERPROXY_BORINGSSL=system "
      "or -DBORINGSSL_ROOT=<your BoringSSL>.")
  endif()
  set(PEERPROXY_BORINGSSL_PREFIX "${_pp_prefix}")
  set(PEERPROXY_BORINGSSL_INCLUDE_DIR "${_pp_prefix}/include")
  _peerproxy_boringssl_check_headers("${PEERPROXY_BORINGSSL_INCLUDE_DIR}"
    "The cache ${_pp_prefix} looks damaged: remove it and configure again.")
  set(_pp_libs "${_pp_prefix}/lib/libssl.a" "${_pp_prefix}/lib/libcrypto.a")
  set(PEERPROXY_BSSL_TOOL "${_pp_prefix}/bin/bssl")
  # Configure again when the cache entry is rebuilt or removed (so that a
  # removed cache is rebuilt by the next build), or when the recipe changes.
  set_property(DIRECTORY "${CMAKE_SOURCE_DIR}" APPEND PROPERTY
    CMAKE_CONFIGURE_DEPENDS "${_pp_prefix}/BUILD-INFO" "${_pp_script}")
  _peerproxy_boringssl_info("${_pp_prefix}/BUILD-INFO" version _pp_version)
  _peerproxy_boringssl_info("${_pp_prefix}/BUILD-INFO" assembly _pp_asm)
  if(_pp_asm STREQUAL "yes")
    set(_pp_asm "with assembly")
  else()
    set(_pp_asm "without assembly")
  endif()
  _peerproxy_boringssl_info("${_pp_prefix}/BUILD-INFO" sanitize _pp_san)
  if(_pp_san AND NOT _pp_san STREQUAL "none")
    set(_pp_asm "${_pp_asm}, -fsanitize=${_pp_san}")
  endif()
  set(PEERPROXY_BORINGSSL_DESC
    "BoringSSL ${_pp_version} built from Debian source, static, ${_pp_asm}")

elseif(PEERPROXY_BORINGSSL STREQUAL "system")
  # ---- system: Debian's shared android-libboringssl ------------------------
  set(PEERPROXY_BORINGSSL_FLAVOR "system")
  set(_pp_hint "Install Debian's android-libboringssl-dev package (apt-get install android-libboringssl-dev).")
  if(CMAKE_LIBRARY_ARCHITECTURE)
    set(_pp_multiarch "${CMAKE_LIBRARY_ARCHITECTURE}")
  else()
    set(_pp_multiarch "x86_64-linux-gnu")
  endif()
  set(_pp_libdir "/usr/lib/${_pp_multiarch}/android")
  set(PEERPROXY_BORINGSSL_INCLUDE_DIR "/usr/include/android")
  _peerproxy_boringssl_check_headers("${PEERPROXY_BORINGSSL_INCLUDE_DIR}" "${_pp_hint}")
  set(_pp_libs "${_pp_libdir}/libssl.so" "${_pp_libdir}/libcrypto.so")
  foreach(_pp_lib IN ITEMS ${_pp_libs})
    if(NOT EXISTS "${_pp_lib}")
      message(FATAL_ERROR "BoringSSL: ${_pp_lib} not found. ${_pp_hint}")
    endif()
  endforeach()
  # The directory is not on the loader's search path: record it in the
  # binary (RUNPATH), for the build tree and installed binaries alike.
  list(APPEND _pp_link_options "LINKER:-rpath,${_pp_libdir}")
  list(APPEND _pp_rpath_dirs "${_pp_libdir}")
  set(PEERPROXY_BSSL_TOOL "/usr/bin/bssl-tool")
  if(NOT EXISTS "${PEERPROXY_BSSL_TOOL}")
    message(STATUS "BoringSSL: ${PEERPROXY_BSSL_TOOL} not found (package android-boringssl)")
  endif()
  execute_process(
    COMMAND dpkg-query -W "-f=\${Version}" android-libboringssl-dev
    OUTPUT_VARIABLE _pp_version OUTPUT_STRIP_TRAILING_WHITESPACE
    ERROR_QUIET RESULT_VARIABLE _pp_rc)
  if(NOT _pp_rc EQUAL 0)
    set(_pp_version "")
  endif()
  if(_pp_version)
    set(_pp_version " ${_pp_version}")
  endif()
  set(PEERPROXY_BORINGSSL_DESC
    "BoringSSL${_pp_version} from Debian's android-libboringssl, shared, OPENSSL_SMALL")

else()
  message(FATAL_ERROR "BoringSSL: PEERPROXY_BORINGSSL='${PEERPROXY_BORINGSSL}' "
    "is not one of: source, system (or set BORINGSSL_ROOT to your own build)")
endif()

if(PEERPROXY_SANITIZER STREQUAL "thread" AND
   NOT PEERPROXY_BORINGSSL_FLAVOR STREQUAL "source")
  message(WARNING "BoringSSL: ThreadSanitizer with a BoringSSL that is not "
    "instrumented (${PEERPROXY_BORINGSSL_FLAVOR}): TSan sees none of its memory "
    "accesses or atomics, so races through it go unseen and its reference "
    "counts may be reported as races. -DPEERPROXY_BORINGSSL=source builds an "
    "instrumented one.")
endif()

# A description travels as a C string literal: keep it to one plain line.
string(REPLACE "\"" "'" PEERPROXY_BORINGSSL_DESC "${PEERPROXY_BORINGSSL_DESC}")
string(REPLACE "\\" "/" PEERPROXY_BORINGSSL_DESC "${PEERPROXY_BORINGSSL_DESC}")
string(REPLACE ";" "," PEERPROXY_BORINGSSL_DESC "${PEERPROXY_BORINGSSL_DESC}")

if(_pp_rpath_dirs)
  list(REMOVE_DUPLICATES _pp_link_options)
  list(REMOVE_DUPLICATES _pp_rpath_dirs)
  # The RUNPATH comes from the link option above.  CMake would add its own
  # build-tree rpath for these directories as well, padded with a trailing
  # ':' (an empty entry: the current directory) when install rules exist, and
  # rewrite it on install.  Declaring them implicit keeps CMake out of it;
  # the libraries are linked by full path, so nothing else changes.
  list(APPEND CMAKE_PLATFORM_IMPLICIT_LINK_DIRECTORIES ${_pp_rpath_dirs})
  # Full paths must stay full paths: with the OLD behaviour CMake would turn
  # a library in an implicit directory into -lssl, which is OpenSSL 3's.
  cmake_policy(GET CMP0060 _pp_cmp0060)
  if(NOT _pp_cmp0060 STREQUAL "NEW")
    message(FATAL_ERROR "BoringSSL: policy CMP0060 must be NEW (cmake_minimum_required(VERSION 3.3) or later)")
  endif()
endif()

add_library(peerproxy_boringssl INTERFACE)
target_include_directories(peerproxy_boringssl BEFORE INTERFACE
  "${PEERPROXY_BORINGSSL_INCLUDE_DIR}")
target_link_libraries(peerproxy_boringssl INTERFACE ${_pp_libs} Threads::Threads)
if(_pp_link_options)
  target_link_options(peerproxy_boringssl INTERFACE ${_pp_link_options})
endif()
target_compile_definitions(peerproxy_boringssl INTERFACE
  "PEERPROXY_BORINGSSL_FLAVOR=\"${PEERPROXY_BORINGSSL_FLAVOR}\""
  "PEERPROXY_BORINGSSL_DESC=\"${PEERPROXY_BORINGSSL_DESC}\"")

message(STATUS "BoringSSL: ${PEERPROXY_BORINGSSL_DESC}")
message(STATUS "BoringSSL: headers ${PEERPROXY_BORINGSSL_INCLUDE_DIR}, tool ${PEERPROXY_BSSL_TOOL}")

unset(_pp_libs)
unset(_pp_link_options)
unset(_pp_root)
unset(_pp_hint)
unset(_pp_dirs)
unset(_pp_ssl)
unset(_pp_crypto)
unset(_pp_kind)
unset(_pp_lib)
unset(_pp_libdir)
unset(_pp_version)
unset(_pp_script)
unset(_pp_prefix)
unset(_pp_rc)
unset(_pp_asm)
unset(_pp_multiarch)
unset(_pp_rpath_dirs)
unset(_pp_cmp0060)
