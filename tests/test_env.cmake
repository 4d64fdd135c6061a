# clattn_test_setup(TESTS name... [ENV "NAME=value"...]): the properties
# every CTest test of clattn gets.
#
# - Exit code 77 is a skip (a part the device or the environment cannot run:
#   no root, no user namespaces, an unsupported problem), shown as such by
#   CTest, never counted as a pass.
# - The environment: ENV as given, and the variables below removed unless ENV
#   sets them. Each of them changes what a test exercises (a forced kernel
#   configuration, a filtered sweep, kernels read from a directory, extra
#   build options, another fuzzing seed); one left in a developer's shell
#   would otherwise turn every test into a different test that still passes.
#   CMake before 3.22 cannot unset a variable: there they are set empty,
#   which clattn and the tests read as unset.
set(CLATTN_TEST_CLEARED_ENV
  CLATTN_PARAMS CLATTN_SWEEP_ONLY CLATTN_SWEEP_FRESH CLATTN_KERNEL_DIR
  CLATTN_BUILD_OPTIONS CLATTN_FUZZ_SEED CLATTN_OCLGRIND_UNINIT
  POCL_LLVM_CPU_NAME POCL_KERNELLIB_NAME POCL_AFFINITY)

function(clattn_test_setup)
  cmake_parse_arguments(ARG "" "" "TESTS;ENV" ${ARGN})
  set(_env ${ARG_ENV})
  set(_mods)
  foreach(_var ${CLATTN_TEST_CLEARED_ENV})
    set(_given FALSE)
    foreach(_e ${ARG_ENV})
      if(_e MATCHES "^${_var}=")
        set(_given TRUE)
      endif()
    endforeach()
    if(_given)
      continue()
    endif()
    if(CMAKE_VERSION VERSION_LESS 3.22)
      list(APPEND _env "${_var}=")
    else()
      list(APPEND _mods "${_var}=unset:")
    endif()
  endforeach()
  set_tests_properties(${ARG_TESTS} PROPERTIES SKIP_RETURN_CODE 77 ENVIRONMENT "${_env}")
  if(_mods)
    set_tests_properties(${ARG_TESTS} PROPERTIES ENVIRONMENT_MODIFICATION "${_mods}")
  endif()
endfunction()
