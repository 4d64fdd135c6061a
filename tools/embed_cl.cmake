# Writes OUT: the text of IN as a NUL-terminated C array named NAME, so
# attn-tune carries its own kernels (bench's baselines and probes) with no
# file beside it.
file(READ "${IN}" _hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _bytes "${_hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n" _bytes "${_bytes}")
string(RANDOM LENGTH 12 _tag) # a temporary of its own, should two runs overlap
file(WRITE "${OUT}.${_tag}.tmp"
  "/* Generated from ${IN} by embed_cl.cmake; do not edit. */\n"
  "const char ${NAME}[] = {\n${_bytes}0x00};\n")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.${_tag}.tmp" "${OUT}")
file(REMOVE "${OUT}.${_tag}.tmp")
