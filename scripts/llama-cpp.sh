#!/usr/bin/env bash
# Build llama.cpp's command-line tools (llama-bench, llama-quantize,
# llama-imatrix, llama-perplexity) from the llama.cpp tree vendored in the
# pinned llama-cpp-python source archive on PyPI, once, into the cache:
#
#   scripts/llama-cpp.sh                 # prints the bin directory on stdout
#   QLOADER_CACHE=/some/dir scripts/llama-cpp.sh
#
# QLoader compares itself with llama.cpp side by side (`qloader bench model
# --llama-cpp`); neither the tests nor the main job need this.
#
# ggml is built for the CPU features this machine reports, with GGML_NATIVE
# off and AMX off: some VMs list AMX in their CPU flags, but the kernel never
# grants the tile state and the first tile instruction raises SIGILL. The
# build directory is keyed on the feature set, so a cache shared between
# machines never hands one CPU another's binaries. `qloader bench model
# --llama-cpp` finds the build by the options recorded in its .complete
# (build_options in crates/qloader-runtime/src/bench/llama_cpp.rs): change
# the option list in both places together.
set -euo pipefail

VERSION=0.3.36
SDIST=llama_cpp_python-$VERSION.tar.gz
URL=https://files.pythonhosted.org/packages/ec/e9/e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/$SDIST
SHA=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
# CMake and Ninja come from PyPI too (the machine has neither).
CMAKE_SPEC=cmake==3.31.6
NINJA_SPEC=ninja==1.11.1.4
TOOLS=(llama-bench llama-quantize llama-imatrix llama-perplexity)

CACHE="${QLOADER_CACHE:-$HOME/.cache/qloader}"
ROOT="$CACHE/llama-cpp"
mkdir -p "$ROOT/downloads"

log() { printf 'llama-cpp: %s\n' "$*" >&2; }

# The ggml options for the features /proc/cpuinfo lists (x86-64 only).
flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
has() { [[ "$flags" == *" $1 "* ]]; }
options=(-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)
features=()
for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI \
    avx512f:AVX512 avx512_vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    flag="${pair%%:*}" option="${pair#*:}"
    if has "$flag"; then
        options+=("-DGGML_$option=ON")
        features+=("$flag")
    else
        options+=("-DGGML_$option=OFF")
    fi
done
# GGML_AVX512 needs the BW/VL/DQ/CD subsets too; leave it off without them.
if has avx512f && ! { has avx512bw && has avx512vl && has avx512dq && has avx512cd; }; then
    options+=(-DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF)
    features=("${features[@]/avx512*/}")
fi
key="$(printf '%s\n' "$VERSION" "${options[@]}" | sha256sum | cut -c1-12)"
BIN="$ROOT/build-$key/bin"

if [[ -f "$ROOT/build-$key/.complete" ]]; then
    log "cached at $BIN"
    echo "$BIN"
    exit 0
fi

archive="$ROOT/downloads/$SDIST"
if ! { [[ -f "$archive" ]] && echo "$SHA  $archive" | sha256sum --check --status; }; then
    log "downloading llama-cpp-python $VERSION (source archive) from PyPI"
    curl -fsSL --retry 3 -o "$archive.part" "$URL"
    if ! echo "$SHA  $archive.part" | sha256sum --check --status; then
        log "sha256 mismatch for $SDIST (expected $SHA); refusing to use it"
        rm -f "$archive.part"
        exit 1
    fi
    mv "$archive.part" "$archive"
fi

venv="$ROOT/venv"
if [[ ! -x "$venv/bin/cmake" || ! -x "$venv/bin/ninja" ]]; then
    log "installing $CMAKE_SPEC and $NINJA_SPEC from PyPI into $venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$CMAKE_SPEC" "$NINJA_SPEC"
fi

src="$ROOT/src-$VERSION"
if [[ ! -f "$src/.complete" ]]; then
    rm -rf "$src" "$src.tmp"
    mkdir -p "$src.tmp"
    tar -xzf "$archive" -C "$src.tmp" --strip-components=1
    touch "$src.tmp/.complete"
    mv "$src.tmp" "$src"
fi

build="$ROOT/build-$key"
log "building ${TOOLS[*]} for: ${features[*]:-baseline x86-64} (AMX off); a few minutes"
rm -rf "$build"
"$venv/bin/cmake" -S "$src/vendor/llama.cpp" -B "$build" -G Ninja \
    -DCMAKE_MAKE_PROGRAM="$venv/bin/ninja" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON \
    -DGGML_OPENMP=ON "${options[@]}" >&2
"$venv/bin/cmake" --build "$build" --target "${TOOLS[@]}" -j "$(nproc)" >&2
for tool in "${TOOLS[@]}"; do
    [[ -x "$BIN/$tool" ]] || { log "build finished without $BIN/$tool"; exit 1; }
done
printf '%s\n' "${options[@]}" > "$build/.complete"
log "ready at $BIN"
echo "$BIN"
