#!/usr/bin/env bash
# Run QLoader's test suite: fetch the real-model fixtures if they are not
# cached yet (a second run downloads nothing), then every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-fixtures.sh
cargo test --workspace "$@"
