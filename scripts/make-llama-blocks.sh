#!/usr/bin/env bash
# Regenerates the checked-in llama.cpp blocks of the bit-identity tests
# (crates/qloader-format/tests/data/llama-*.bin and .f32): builds
# scripts/llama-blocks.c against the ggml that scripts/llama-cpp.sh built and
# runs it once per type. Run by hand; the tests only read the outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(scripts/llama-cpp.sh)
BUILD=$(dirname "$BIN")
SRC=$(ls -d "${QLOADER_CACHE:-$HOME/.cache/qloader}"/llama-cpp/src-*/vendor/llama.cpp | head -1)
OUT=crates/qloader-format/tests/data
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cc -O2 -I"$SRC/ggml/include" scripts/llama-blocks.c \
   "$BUILD/ggml/src/libggml-base.a" -fopenmp -lstdc++ -lm -lpthread -o "$TMP/llama-blocks"
# GGML_TYPE_Q4_0 = 2.
"$TMP/llama-blocks" 2 "$OUT/llama-q4_0.bin" "$OUT/llama-q4_0.f32"
# GGML_TYPE_Q5_0 = 6.
"$TMP/llama-blocks" 6 "$OUT/llama-q5_0.bin" "$OUT/llama-q5_0.f32"
# GGML_TYPE_Q8_0 = 8.
"$TMP/llama-blocks" 8 "$OUT/llama-q8_0.bin" "$OUT/llama-q8_0.f32"
# GGML_TYPE_Q4_1 = 3.
"$TMP/llama-blocks" 3 "$OUT/llama-q4_1.bin" "$OUT/llama-q4_1.f32"
# GGML_TYPE_Q4_K = 12.
"$TMP/llama-blocks" 12 "$OUT/llama-q4_k.bin" "$OUT/llama-q4_k.f32"
# GGML_TYPE_Q5_K = 13.
"$TMP/llama-blocks" 13 "$OUT/llama-q5_k.bin" "$OUT/llama-q5_k.f32"
# GGML_TYPE_IQ4_NL = 20.
"$TMP/llama-blocks" 20 "$OUT/llama-iq4_nl.bin" "$OUT/llama-iq4_nl.f32"
# GGML_TYPE_IQ4_XS = 23.
"$TMP/llama-blocks" 23 "$OUT/llama-iq4_xs.bin" "$OUT/llama-iq4_xs.f32"
# The importance-matrix and ternary types (llama-blocks.c gives the IQ1/IQ2/
# IQ3 ones an importance matrix): GGML_TYPE_IQ2_XXS = 16, IQ2_XS = 17,
# IQ3_XXS = 18, IQ1_S = 19, IQ3_S = 21, IQ2_S = 22, IQ1_M = 29, TQ1_0 = 34,
# TQ2_0 = 35.
for pair in 16:iq2_xxs 17:iq2_xs 18:iq3_xxs 19:iq1_s 21:iq3_s 22:iq2_s 29:iq1_m 34:tq1_0 35:tq2_0; do
    "$TMP/llama-blocks" "${pair%%:*}" "$OUT/llama-${pair#*:}.bin" "$OUT/llama-${pair#*:}.f32"
done
