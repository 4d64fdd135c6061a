# The decode_example test: clattn-decode in every KV format, contiguous and
# paged, checked against fp32.
#   cmake -DDECODE=clattn-decode -DCHECK=clattn-decode-check -DWORK=dir -P run_checks.cmake
#
# 1. fp32 contiguous, greedy, against the program's fp64 host model fed the
#    same tokens (--reference): bound 1e-5, measured 6.4e-7.
# 2. fp32 paged (pages of 16, shuffled) against fp32 contiguous, greedy: the
#    same tokens and bit-identical logits expected (bound 1e-6 relative).
# 3. Every other format, teacher-forced (every run is fed the same tokens, so
#    a flipped argmax cannot make the runs diverge), against fp32
#    teacher-forced: the relative L2 error of the logits of every one of the
#    32 generation steps, worst step within the format's bound.
#
# Bounds, and the worst step measured on PoCL (CPU), the same contiguous and
# paged. They follow the formats' rounding: int8 with a step of max/127 per
# row, FP8 with 3 (E4M3) or 2 (E5M2) mantissa bits, 4-bit formats with 16
# levels per 32 channels.
#   f16 1e-3 (2.2e-4)    bf16 1e-2 (1.7e-3)
#   int8 2e-2 (6.7e-3)   int8-g32 2e-2 (5.6e-3)   q8_0 2e-2 (5.7e-3)
#   e4m3 6e-2 (2.9e-2)   e5m2 1.2e-1 (5.3e-2)
#   int4 2e-1 (7.6e-2)   q4_0 2e-1 (9.0e-2)
# The bytes per token printed are checked against clattn.h's layouts
# (2 kv heads x 64 channels, K and V, 4 layers).
foreach(_v DECODE CHECK WORK)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "run_checks.cmake: -D${_v}=... missing")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

set(_formats f16 bf16 int8 int8-g32 int4 q8_0 q4_0 e4m3 e5m2)
set(_bound_f16 1e-3)
set(_bound_bf16 1e-2)
set(_bound_int8 2e-2)
set(_bound_int8-g32 2e-2)
set(_bound_q8_0 2e-2)
set(_bound_e4m3 6e-2)
set(_bound_e5m2 1.2e-1)
set(_bound_int4 2e-1)
set(_bound_q4_0 2e-1)
set(_bytes_f32 4096)
set(_bytes_f16 2048)
set(_bytes_bf16 2048)
set(_bytes_int8 1056)     # 64 + a 2-byte scale per row
set(_bytes_int8-g32 1088) # 64 + 2 x 2
set(_bytes_q8_0 1088)     # 2 blocks of 34
set(_bytes_e4m3 1024)
set(_bytes_e5m2 1024)
set(_bytes_int4 640)      # 32 + 2 groups x (scale, zero) x 2
set(_bytes_q4_0 576)      # 2 blocks of 18

set(_failed "")
set(_unsupported "")

# decode(NAME FORMAT [options...]): one run, its dump in WORK/NAME.bin;
# sets _ran in the caller to 0 when the device cannot run it.
function(decode name format)
  execute_process(
    COMMAND "${DECODE}" --format ${format} ${ARGN} --dump "${WORK}/${name}.bin"
    RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
  string(REPLACE ";" " " _args "--format;${format};${ARGN}")
  message("---- clattn-decode ${_args}\n${_out}${_err}")
  set(_ran 1 PARENT_SCOPE)
  if(_rc EQUAL 77)
    set(_unsupported "${_unsupported} ${name}" PARENT_SCOPE)
    set(_ran 0 PARENT_SCOPE)
  elseif(NOT _rc EQUAL 0)
    message(FATAL_ERROR "clattn-decode ${_args} exited with ${_rc}")
  elseif(NOT _out MATCHES "KV cache: ${_bytes_${format}} bytes per token")
    set(_failed "${_failed} ${name}(bytes/token)" PARENT_SCOPE)
  endif()
endfunction()

function(check ref run bound)
  execute_process(
    COMMAND "${CHECK}" "${WORK}/${ref}.bin" "${WORK}/${run}.bin" --max-rel-l2 ${bound} ${ARGN}
    RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
  message("${run} against ${ref}: ${_out}${_err}")
  if(NOT _rc EQUAL 0)
    set(_failed "${_failed} ${run}" PARENT_SCOPE)
  endif()
endfunction()

decode(f32 f32 --reference "${WORK}/f32-reference.bin")
if(NOT _ran)
  message(FATAL_ERROR "decode example skipped: fp32 attention not supported on this device")
endif()
check(f32-reference f32 1e-5)
decode(f32-paged f32 --paged 16)
if(_ran)
  check(f32 f32-paged 1e-6 --same-tokens)
endif()

decode(teacher-f32 f32 --teacher)
foreach(_f ${_formats})
  foreach(_mode contiguous paged)
    set(_opts --teacher)
    if(_mode STREQUAL "paged")
      list(APPEND _opts --paged 16)
    endif()
    decode(teacher-${_f}-${_mode} ${_f} ${_opts})
    if(_ran)
      check(teacher-f32 teacher-${_f}-${_mode} ${_bound_${_f}})
    endif()
  endforeach()
endforeach()

if(_failed)
  message(FATAL_ERROR "decode example FAILED:${_failed}")
endif()
# A format the device cannot store is not a pass: the whole test is skipped.
if(_unsupported)
  message(FATAL_ERROR "decode example skipped: not supported on this device:${_unsupported}")
endif()
message("decode example: every format within its bound")
