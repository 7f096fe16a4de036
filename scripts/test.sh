#!/usr/bin/env bash
# Installs every system package the project needs (idempotent), builds the
# toolchain and runs the whole test suite: unit tests, format round trips and
# fuzz-style property tests, and the end-to-end tests that compile C programs
# with hcc, run them on both ISAs and migrate them.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --workspace
cargo test --release --workspace
