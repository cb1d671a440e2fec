#!/usr/bin/env bash
# llama.cpp's own files against QLoader plans exported to GGUF, every file measured by
# llama.cpp's `llama-perplexity` (the same harness for both):
#
#   scripts/compare-llama-cpp.sh [WORKDIR]      # default: target/compare-llama-cpp
#
# 1. llama.cpp: an importance matrix from the calibration text (Alice, 16 × 256 tokens, as
#    `qloader analyze`), then the SmolLM2 fixture re-quantized to each type below with it.
# 2. QLoader: a sensitivity table (imatrix), and for each llama.cpp file a plan for
#    profiles/llama-cpp.toml (only formats GGUF stores as they are) whose quantizable tensors
#    leave 2 MiB of the file's size for the rest (norms, metadata), packed and exported.
# 3. Each file: bytes and `llama-perplexity -c 512 --chunks 8` on Botchan; QLoader's files also
#    in QLoader's harness scored the same way (`eval --llama-cpp-scoring --act int8`).
#
# Prints one line per file: who, type or budget, bytes, perplexity (and ours in our harness).
# Needs the fixtures (scripts/fetch-fixtures.sh) and llama.cpp (scripts/llama-cpp.sh builds
# it, several minutes the first time); takes about 25 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
work="${1:-target/compare-llama-cpp}"
mkdir -p "$work"
bin="$(scripts/llama-cpp.sh)"
cache="${QLOADER_CACHE:-$HOME/.cache/qloader}"
model="$cache/smollm2-135m-instruct/model.gguf"
text="$cache/botchan/botchan.txt"
calib="$cache/alice/alice.txt"
cargo build --release -p qloader-cli >&2
q="$root/target/release/qloader"
cd "$work"
types=(Q8_0 Q5_K_M Q4_K_M Q4_K_S Q3_K_M Q4_0 IQ4_XS Q3_K_S Q2_K IQ3_XXS IQ2_XS)

ppl() {
    "$bin/llama-perplexity" -m "$1" -f "$text" -c 512 --chunks 8 -t "$(nproc)" 2>&1 |
        sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p'
}

echo "source $(stat -c %s "$model") $(ppl "$model")"
[ -f imatrix.dat ] || "$bin/llama-imatrix" -m "$model" -f "$calib" -c 256 --chunks 16 \
    -o imatrix.dat >imatrix.log 2>&1
for ty in "${types[@]}"; do
    [ -f "llama-$ty.gguf" ] || "$bin/llama-quantize" --allow-requantize --imatrix imatrix.dat \
        "$model" "llama-$ty.gguf" "$ty" >"quantize-$ty.log" 2>&1
    echo "llama.cpp $ty $(stat -c %s "llama-$ty.gguf") $(ppl "llama-$ty.gguf")"
done
[ -f table.json ] || "$q" analyze --model "$model" --formats f16,q8_0,int4,q4_0,iq4_nl,int4k,nl4k \
    --method imatrix -o table.json >analyze.log 2>&1
for ty in "${types[@]}"; do
    budget=$(( $(stat -c %s "llama-$ty.gguf") - 2 * 1024 * 1024 ))
    if ! "$q" plan --table table.json --profile "$root/profiles/llama-cpp.toml" \
        --budget "${budget}B" -o "plan-$ty.json" >"plan-$ty.log" 2>&1; then
        echo "qloader at-$ty no plan fits: $(tail -1 "plan-$ty.log")"
        continue
    fi
    "$q" pack --model "$model" --plan "plan-$ty.json" -o "qloader-$ty.qlm" >"pack-$ty.log" 2>&1
    "$q" export "qloader-$ty.qlm" -o "qloader-$ty.gguf" >"export-$ty.log" 2>&1
    ours=$("$q" eval "qloader-$ty.qlm" --text "$text" --windows 8 --llama-cpp-scoring \
        --act int8 2>&1 | tail -1 | awk -F'|' '{gsub(/ /, "", $4); print $4}')
    echo "qloader at-$ty $(stat -c %s "qloader-$ty.gguf") $(ppl "qloader-$ty.gguf") (qloader's harness: $ours)"
done
