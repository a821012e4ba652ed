# The warning flags of every peerproxy build, gcc or clang: each one is
# added only if the compiler knows it (check_c_compiler_flag), so the
# clang-built fuzz harnesses (test/fuzz, also built on their own) share
# them.  Warnings are errors.
#
# -Wformat-truncation=2 (gcc): warns about every snprintf into a buffer
# of known size that might be cut, even when its result is checked; level
# 1 only warns when a cut is likely and the result is unused.  Level 2 is
# kept: a raw snprintf must provably fit (its buffer sized from the
# inputs' bounds), and text whose length cannot be bounded (a path, a
# socket name) goes through pp_fmt (util/strbuf.h), whose result must be
# checked.  -Wformat-overflow=2 does the same for sprintf.
# -Wconversion is not on: the tree has hundreds of int/size_t mixes that
# are each fine; it stays a later, separate change.
include(CheckCCompilerFlag)

set(PP_WARNING_FLAGS -Wall -Wextra -Werror -Wshadow -Wformat=2
  -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
  -Wformat-truncation=2 -Wformat-overflow=2)

foreach(flag IN LISTS PP_WARNING_FLAGS)
  string(MAKE_C_IDENTIFIER "PP_CC_HAS${flag}" var)
  check_c_compiler_flag("${flag}" ${var})
  if(${var})
    add_compile_options("${flag}")
  endif()
endforeach()
