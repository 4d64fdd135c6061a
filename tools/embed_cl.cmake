# Writes OUT: the text of IN as a NUL-terminated C array named NAME, so
# attn-tune carries its own kernels (bench's baselines and probes) with no
# file beside it.
file(READ "${IN}" _hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _bytes "${_hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n" _bytes "${_bytes}")
file(WRITE "${OUT}.tmp"
  "/* Generated from ${IN} by embed_cl.cmake; do not edit. */\n"
  "const char ${NAME}[] = {\n${_bytes}0x00};\n")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
file(REMOVE "${OUT}.tmp")
