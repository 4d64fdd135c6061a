# attn-view's tests, run by CTest with -DMODE=heatmap or -DMODE=bad, VIEW
# (attn-view), CHECK (view_check), WORK (a scratch directory) and LABELS
# (1 when attn-view was built with FreeType and a font).
#
# heatmap: writes inputs whose weights are known exactly (view_check.c
# says which), runs attn-view on them four ways, and reads the PNGs back:
# their sizes, and the colours of known weights, of masked cells and of the
# colour bar's ends. Every run must exit 0 with nothing on stderr.
# bad: damaged, unsupported or mismatching inputs and bad options are
# refused with exit code 1 (data) or 2 (command line) and a message saying
# why, never a crash.

# The layout, as view.h fixes it.
set(M 8)           # VIEW_MARGIN
set(BAR_GAP 12)
set(BAR_W 16)
set(BAR_MIN_H 96)
set(NUM 68)        # VIEW_NUMBER_GAP + VIEW_NUMBER_WIDTH
set(TILE_GAP 8)
set(TITLE_H 14)

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/in/dump" "${WORK}/in/bad")

function(run_ok)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc STREQUAL "0")
    message(FATAL_ERROR "'${ARGN}' exited with ${rc}\nstdout:\n${out}\nstderr:\n${err}")
  endif()
  if(NOT err STREQUAL "")
    message(FATAL_ERROR "'${ARGN}' wrote to stderr:\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

# expect_refusal(CODE REGEX ARGS...): attn-view ARGS exits with CODE and
# says something matching REGEX on stderr.
function(expect_refusal code regex)
  execute_process(COMMAND "${VIEW}" ${ARGN} --out "${WORK}/refused"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc STREQUAL "${code}")
    message(FATAL_ERROR "attn-view ${ARGN}: exit ${rc}, expected ${code}\nstdout:\n${out}\n"
                        "stderr:\n${err}")
  endif()
  if(NOT err MATCHES "^attn-view: .*${regex}")
    message(FATAL_ERROR "attn-view ${ARGN}: stderr does not match '${regex}':\n${err}")
  endif()
  message(STATUS "refused as expected: ${err}")
endfunction()

run_ok("${CHECK}" inputs "${WORK}/in")
set(in "${WORK}/in")

if(MODE STREQUAL "heatmap")
  set(cell 10)
  # One head: 3 x 4 cells beside a bar as tall as VIEW_BAR_MIN_HEIGHT.
  math(EXPR head_w "${M} + 4 * ${cell} + ${BAR_GAP} + ${BAR_W} + ${NUM} + ${M}")
  math(EXPR head_h "${M} + ${BAR_MIN_H} + ${M}")
  math(EXPR bar_x "${M} + 4 * ${cell} + ${BAR_GAP} + ${BAR_W} / 2")
  math(EXPR bar_bottom "${M} + ${BAR_MIN_H} - 1")
  # Cell (i, j) of head 0 is centred on (M + j cell + cell/2, M + i cell + cell/2).
  foreach(ij 00 01 11 12 23)
    string(SUBSTRING ${ij} 0 1 i)
    string(SUBSTRING ${ij} 1 1 j)
    math(EXPR x${ij} "${M} + ${j} * ${cell} + ${cell} / 2")
    math(EXPR y${ij} "${M} + ${i} * ${cell} + ${cell} / 2")
  endforeach()
  set(known cell ${x00} ${y00} 1 0 1
            cell ${x01} ${y01} 0 0 1
            cell ${x11} ${y11} 0.5 0 1
            cell ${x12} ${y12} 0.5 0 1
            cell ${x23} ${y23} 0.25 0 1
            bar ${bar_x} ${M} ${bar_bottom})

  # 1. 4-d float32, batch entry 1, the scale fixed to 0..1.
  run_ok("${VIEW}" --q "${in}/q.npy" --k "${in}/k.npy" --batch 1 --cell ${cell}
         --vmin 0 --vmax 1 --out "${WORK}/plain")
  run_ok("${CHECK}" png "${WORK}/plain/head_00.png" ${head_w} ${head_h} ${known})
  run_ok("${CHECK}" png "${WORK}/plain/head_01.png" ${head_w} ${head_h}
         bar ${bar_x} ${M} ${bar_bottom})
  # The grid: two tiles side by side, each under its title line.
  math(EXPR grid_w "${M} + 2 * 4 * ${cell} + ${TILE_GAP} + ${BAR_GAP} + ${BAR_W} + ${NUM} + ${M}")
  math(EXPR grid_h "${M} + ${TITLE_H} + ${BAR_MIN_H} + ${M}")
  math(EXPR gy00 "${y00} + ${TITLE_H}")
  math(EXPR gy11 "${y11} + ${TITLE_H}")
  run_ok("${CHECK}" png "${WORK}/plain/grid.png" ${grid_w} ${grid_h}
         cell ${x00} ${gy00} 1 0 1 cell ${x11} ${gy11} 0.5 0 1)

  # 2. float16 Q (format 2.0) and 3-d K (format 3.0): the same weights.
  run_ok("${VIEW}" --q "${in}/q16.npy" --k "${in}/k3.npy" --cell ${cell} --vmin 0 --vmax 1
         --out "${WORK}/half")
  run_ok("${CHECK}" png "${WORK}/half/head_00.png" ${head_w} ${head_h} ${known})

  # 3. Causal (top_left) with the scale from the data: cell (0, 1) is
  # hidden, and the largest weight, 1, is the top of the map.
  run_ok("${VIEW}" --q "${in}/q.npy" --k "${in}/k.npy" --batch 1 --cell ${cell}
         --causal top_left --out "${WORK}/causal")
  run_ok("${CHECK}" png "${WORK}/causal/head_00.png" ${head_w} ${head_h}
         masked ${x01} ${y01} masked ${x23} ${y01} cell ${x00} ${y00} 1 0 1
         bar ${bar_x} ${M} ${bar_bottom})

  # 4. A layer dump with tokens: labels make the image larger where a font
  # is there, and cost nothing else.
  run_ok("${VIEW}" --layer-dump "${in}/dump" --cell 12 --out "${WORK}/dump")
  math(EXPR dump_w "${M} + 4 * 12 + ${BAR_GAP} + ${BAR_W} + ${NUM} + ${M}")
  if(LABELS)
    math(EXPR dump_w "${dump_w} + 1")
    math(EXPR dump_h "${head_h} + 1")
  else()
    set(dump_h ${head_h})
  endif()
  run_ok("${CHECK}" png-min "${WORK}/dump/head_00.png" ${dump_w} ${dump_h})
  run_ok("${CHECK}" png-min "${WORK}/dump/grid.png" ${grid_w} ${grid_h})
elseif(MODE STREQUAL "bad")
  run_ok("${VIEW}" --help)
  set(q --q "${in}/q.npy")
  set(k --k "${in}/k.npy")
  expect_refusal(1 "missing.npy: cannot open" --q "${in}/missing.npy" ${k})
  expect_refusal(1 "not a .npy file" --q "${in}/bad/magic.npy" ${k})
  expect_refusal(1 "not a .npy file" ${q} --k "${in}/bad/empty.npy")
  expect_refusal(1 "format version 4.0" --q "${in}/bad/version.npy" ${k})
  expect_refusal(1 "dtype '>f4'" --q "${in}/bad/big_endian.npy" ${k})
  expect_refusal(1 "dtype '<i4'" --q "${in}/bad/int.npy" ${k})
  expect_refusal(1 "fortran_order is True" --q "${in}/bad/fortran.npy" ${k})
  expect_refusal(1 "lacks 'descr', 'fortran_order' or 'shape'" --q "${in}/bad/no_order.npy" ${k})
  expect_refusal(1 "'shape' is not a tuple" --q "${in}/bad/not_tuple.npy" ${k})
  expect_refusal(1 "a key other than" --q "${in}/bad/extra_key.npy" ${k})
  expect_refusal(1 "truncated" --q "${in}/bad/truncated.npy" ${k})
  expect_refusal(1 "bytes past the array" --q "${in}/bad/trailing.npy" ${k})
  expect_refusal(1 "truncated" --q "${in}/bad/huge.npy" ${k})
  expect_refusal(1 "both must be \\[heads, seq, dim\\]" --q "${in}/bad/rank2.npy" ${k})
  expect_refusal(1 "different head dims" ${q} --k "${in}/bad/k_dim3.npy")
  expect_refusal(1 "K's heads must divide Q's" ${q} --k "${in}/bad/k_heads3.npy")
  expect_refusal(1 "different batch sizes" ${q} --k "${in}/bad/k_batch1.npy")
  expect_refusal(1 "--batch 2, but Q .* holds 2 batch entries" ${q} ${k} --batch 2)
  expect_refusal(1 "3 tokens, but the keys are 4" ${q} ${k} --tokens "${in}/bad/tokens3.txt")
  file(COPY "${in}/dump/q.npy" "${in}/dump/k.npy" DESTINATION "${in}/no_tokens")
  expect_refusal(1 "tokens.txt: cannot open" --layer-dump "${in}/no_tokens")
  expect_refusal(2 "--causal is none, bottom_right or top_left" ${q} ${k} --causal diagonal)
  expect_refusal(2 "--cell expects a whole number in 1..64" ${q} ${k} --cell 0)
  expect_refusal(2 "--scale 0 would mean" ${q} ${k} --scale 0)
  expect_refusal(2 "--vmin \\(1\\) must be below --vmax \\(0\\)" ${q} ${k} --vmin 1 --vmax 0)
  expect_refusal(2 "give --q and --k" ${q})
  expect_refusal(2 "unknown argument '--frob'" ${q} ${k} --frob)
  if(EXISTS "${WORK}/refused")
    message(FATAL_ERROR "a refused run made its --out directory")
  endif()
else()
  message(FATAL_ERROR "MODE must be heatmap or bad")
endif()
