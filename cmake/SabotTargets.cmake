# Helpers that give every Sabot target the same warnings, include root and sanitizer flags, so the
# per-module CMakeLists only say what the module is made of and what it uses.

set(SABOT_WARNINGS -Wall -Wextra -Wno-unused-parameter)
if(SABOT_SANITIZE)
  set(SABOT_SANITIZE_FLAGS -fsanitize=${SABOT_SANITIZE} -fno-omit-frame-pointer
                           -fno-sanitize-recover=all)
else()
  set(SABOT_SANITIZE_FLAGS)
endif()

function(sabot_target_defaults target)
  target_compile_options(${target} PRIVATE ${SABOT_WARNINGS} ${SABOT_SANITIZE_FLAGS})
  target_link_options(${target} PRIVATE ${SABOT_SANITIZE_FLAGS})
endfunction()

# Only include/ is public. A target declared in src/<module>/ (the module's library, its tests and
# micro-benchmarks) also sees src/ privately, so that it includes its own internals as
# "<module>/file.h"; reaching into another module's src/ is refused by scripts/check-layering.sh
# (docs/design.md, "Layering"). Targets elsewhere (tools, examples, bench, fuzz, tests/) see
# include/ only.
function(sabot_internal_includes target)
  set(src_root "${PROJECT_SOURCE_DIR}/src")
  cmake_path(IS_PREFIX src_root "${CMAKE_CURRENT_SOURCE_DIR}" NORMALIZE in_src)
  if(in_src)
    target_include_directories(${target} PRIVATE ${src_root})
  endif()
endfunction()

# sabot_library(NAME SOURCES a.cc b.cc DEPS other_lib)
function(sabot_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/include)
  sabot_internal_includes(${name})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  sabot_target_defaults(${name})
  if(SABOT_SANITIZE)
    target_compile_options(${name} PUBLIC ${SABOT_SANITIZE_FLAGS})
    target_link_options(${name} PUBLIC ${SABOT_SANITIZE_FLAGS})
  endif()
endfunction()

# sabot_test(NAME SOURCES x_test.cc DEPS lib LABELS unit [TIMEOUT 120])
function(sabot_test name)
  if(NOT SABOT_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  sabot_target_defaults(${name})
  sabot_internal_includes(${name})
  add_test(NAME ${name} COMMAND ${name})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
  # A GTEST_SKIP must show as a skip, not as a pass: ctest reports the binary as skipped when its
  # output ends with GoogleTest's list of skipped tests. Anchored at the end because
  # SKIP_REGULAR_EXPRESSION wins over the exit code: when a test also failed, GoogleTest prints its
  # FAILED list after the SKIPPED one, the expression does not match and the binary fails.
  set_tests_properties(${name} PROPERTIES SKIP_REGULAR_EXPRESSION
    "\\[  SKIPPED \\] [0-9]+ tests?, listed below:\n(\\[  SKIPPED \\] [^\n]*\n)+$")
  if(SABOT_SANITIZE MATCHES "thread")
    set_tests_properties(${name} PROPERTIES ENVIRONMENT
      "TSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/cmake/tsan-suppressions.txt")
  endif()
endfunction()

# sabot_benchmark(NAME SOURCES x_benchmark.cc DEPS lib)
function(sabot_benchmark name)
  if(NOT SABOT_BUILD_BENCHMARKS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark)
  sabot_target_defaults(${name})
  sabot_internal_includes(${name})
  if(NOT SABOT_SANITIZE AND TARGET mimalloc)
    target_link_libraries(${name} PRIVATE mimalloc)  # as the programs (see sabot_executable)
  endif()
  set_property(GLOBAL APPEND PROPERTY SABOT_BENCHMARKS ${name})
endfunction()

# sabot_executable(NAME SOURCES main.cc DEPS lib): a program users run (CLI, benchmarks,
# examples). Release builds link mimalloc: columnar batches are allocated on one thread and freed on
# another, which glibc's malloc handles poorly (it trims and re-faults pages; measured 1.7x slower
# on the keyed pipeline benchmark). Sanitizer builds keep the system allocator.
function(sabot_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  sabot_target_defaults(${name})
  if(NOT SABOT_SANITIZE AND TARGET mimalloc)
    target_link_libraries(${name} PRIVATE mimalloc)
  endif()
endfunction()
