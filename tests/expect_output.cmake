# Runs EXE with the list ARGS; fails unless it exits with EXPECT and its
# standard output matches the regular expression MATCH (and, with
# NO_STDERR, unless it wrote nothing to standard error). (CTest's
# PASS_REGULAR_EXPRESSION alone passes a command that printed the right line
# and then failed.)
execute_process(COMMAND "${EXE}" ${ARGS}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc STREQUAL "${EXPECT}")
  message(FATAL_ERROR "'${EXE} ${ARGS}' exited with ${rc}, expected ${EXPECT}\n"
                      "stdout:\n${out}\nstderr:\n${err}")
endif()
if(NOT out MATCHES "${MATCH}")
  message(FATAL_ERROR "'${EXE} ${ARGS}': stdout does not match '${MATCH}'\n"
                      "stdout:\n${out}\nstderr:\n${err}")
endif()
if(NO_STDERR AND NOT err STREQUAL "")
  message(FATAL_ERROR "'${EXE} ${ARGS}' wrote to stderr:\n${err}")
endif()
message(STATUS "exit ${rc} and output as expected")
