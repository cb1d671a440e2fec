#!/usr/bin/env bash
# Regenerates the tiny model of each decoder family and its goldens
# (crates/qloader-models/tests/data/families/): installs the pinned
# transformers, torch, tokenizers and gguf into a virtual environment under
# the cache and runs scripts/make-family-goldens.py. Run by hand; the tests
# only read the outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${QLOADER_CACHE:-$HOME/.cache/qloader}/golden-venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch==2.15.0 transformers==5.25.0 tokenizers==0.23.3 \
    gguf==0.19.0 safetensors numpy
fi
HF_HUB_OFFLINE=1 "$VENV/bin/python" scripts/make-family-goldens.py "$@"
