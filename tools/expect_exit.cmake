# Runs EXE with the list ARGS and fails unless it exits with EXPECT.
execute_process(COMMAND "${EXE}" ${ARGS}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc STREQUAL "${EXPECT}")
  message(FATAL_ERROR "'${EXE} ${ARGS}' exited with ${rc}, expected ${EXPECT}\n"
                      "stdout:\n${out}\nstderr:\n${err}")
endif()
message(STATUS "exit ${rc} as expected; stderr: ${err}")
