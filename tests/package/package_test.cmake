# cmake -P script behind the package test; see CMakeLists.txt beside it.
# In: BUILD_DIR, CONSUMER_DIR, WORK_DIR, GENERATOR, C_COMPILER, BUILD_TYPE,
# EXTRA_FLAGS (sanitizer flags the library was built with, or empty).
cmake_minimum_required(VERSION 3.16)

function(run_step what)
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "package test: ${what} failed (exit ${rc})\n"
                        "command: ${cmd}\nstdout:\n${out}\nstderr:\n${err}")
  endif()
  message(STATUS "${what}: ok")
  string(STRIP "${out}" out)
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
set(config_args "")
if(BUILD_TYPE)
  set(config_args --config "${BUILD_TYPE}")
endif()

# 1. Install, the way a packager or a user does.
run_step("cmake --install into ${prefix}"
  "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}" ${config_args})
file(GLOB_RECURSE config_file "${prefix}/*/clattnConfig.cmake")
file(GLOB_RECURSE pc_file "${prefix}/*/clattn.pc")
if(NOT config_file OR NOT pc_file OR NOT EXISTS "${prefix}/include/clattn.h")
  message(FATAL_ERROR "package test: the install lacks clattnConfig.cmake, clattn.pc or "
                      "include/clattn.h (found: '${config_file}' '${pc_file}')")
endif()

# 2. find_package(clattn) + clattn::clattn and clattn::clattn_static.
set(cmake_dir "${WORK_DIR}/cmake-consumer")
set(build_type_arg "")
if(BUILD_TYPE)
  set(build_type_arg "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")
endif()
run_step("configure the find_package consumer"
  "${CMAKE_COMMAND}" -S "${CONSUMER_DIR}" -B "${cmake_dir}" -G "${GENERATOR}"
  "-DCMAKE_C_COMPILER=${C_COMPILER}" "-DCMAKE_PREFIX_PATH=${prefix}"
  "-DCMAKE_C_FLAGS=${EXTRA_FLAGS}" ${build_type_arg})
run_step("build the find_package consumer"
  "${CMAKE_COMMAND}" --build "${cmake_dir}" ${config_args})
foreach(exe consumer_shared consumer_static)
  file(GLOB_RECURSE exe_path "${cmake_dir}/${exe}" "${cmake_dir}/${exe}.exe")
  if(NOT exe_path)
    message(FATAL_ERROR "package test: ${exe} was not built in ${cmake_dir}")
  endif()
  list(GET exe_path 0 exe_path)
  run_step("run ${exe}" "${exe_path}")
  message(STATUS "  ${step_output}")
endforeach()

# 3. pkg-config --cflags --libs clattn, from the installed clattn.pc only.
find_program(PKG_CONFIG NAMES pkg-config pkgconf REQUIRED)
get_filename_component(pc_dir "${pc_file}" DIRECTORY)
if(DEFINED ENV{PKG_CONFIG_PATH} AND NOT "$ENV{PKG_CONFIG_PATH}" STREQUAL "")
  set(ENV{PKG_CONFIG_PATH} "${pc_dir}:$ENV{PKG_CONFIG_PATH}")
else()
  set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
endif()
run_step("pkg-config --cflags --libs clattn" "${PKG_CONFIG}" --cflags --libs clattn)
set(pc_flags "${step_output}")
run_step("pkg-config --variable=libdir clattn" "${PKG_CONFIG}" --variable=libdir clattn)
set(pc_libdir "${step_output}")
get_filename_component(pc_libdir_real "${pc_libdir}" REALPATH)
get_filename_component(prefix_real "${prefix}" REALPATH)
string(FIND "${pc_libdir_real}/" "${prefix_real}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "package test: the installed clattn.pc points at libdir "
    "'${pc_libdir}', outside the prefix it was installed into ('${prefix}'). "
    "clattn.pc bakes in the configure-time CMAKE_INSTALL_PREFIX; it has to be "
    "relative to \${pcfiledir} to survive 'cmake --install --prefix'.")
endif()
separate_arguments(pc_flag_list UNIX_COMMAND "${pc_flags}")
separate_arguments(extra_flag_list UNIX_COMMAND "${EXTRA_FLAGS}")
set(pc_exe "${WORK_DIR}/pkgconfig-consumer")
run_step("compile the consumer with pkg-config's flags (${pc_flags})"
  "${C_COMPILER}" -std=c99 -Wall -Wextra -Werror ${extra_flag_list}
  "${CONSUMER_DIR}/consumer.c" -o "${pc_exe}" ${pc_flag_list} -lm
  "-Wl,-rpath,${pc_libdir}")
run_step("run the pkg-config consumer" "${pc_exe}")
message(STATUS "  ${step_output}")

# 4. The installed attn-tune finds the installed library by itself.
if(EXISTS "${prefix}/bin/attn-tune")
  run_step("installed attn-tune --version" "${prefix}/bin/attn-tune" --version)
  message(STATUS "  ${step_output}")
endif()
