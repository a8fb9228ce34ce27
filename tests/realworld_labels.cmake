# Run after a test executable is built (see sovdev_add_test): writes a ctest script that labels
# its [realworld] cases `realworld`. Catch2 v2's catch_discover_tests cannot label by tag.
execute_process(
  COMMAND ${TEST_EXECUTOR} "${TEST_EXECUTABLE}" "[realworld]" --list-test-names-only
  OUTPUT_VARIABLE output
  RESULT_VARIABLE result)
if(result LESS 0)
  message(FATAL_ERROR "listing the [realworld] cases of ${TEST_EXECUTABLE} failed: ${output}")
endif()
string(REPLACE "\n" ";" names "${output}")
set(script "")
foreach(name ${names})
  if(NOT name STREQUAL "")
    string(APPEND script "set_tests_properties([==[${TEST_PREFIX}${name}]==] PROPERTIES LABELS realworld)\n")
  endif()
endforeach()
file(WRITE "${CTEST_FILE}" "${script}")
