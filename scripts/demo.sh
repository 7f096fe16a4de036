#!/usr/bin/env bash
# The demo: installs what is missing, builds the toolchain, builds examples/
# with `make CC=hcc`, and migrates running programs x86_64 -> aarch64 ->
# x86_64, printing what happened and how long each step took.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "== building hcc, hld and hcontainer"
cargo build --release --workspace --quiet
export PATH="$PWD/target/release:$PATH"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp examples/*.c examples/Makefile "$work/"
cd "$work"
echo "== make CC=hcc (every object holds an x86_64 and an aarch64 variant)"
time make -s CC=hcc
echo
echo "== hcontainer inspect nbody"
hcontainer inspect nbody | head -4
echo
echo "== hcontainer verify nbody"
hcontainer verify nbody
echo
echo "== nbody natively on x86_64, and on aarch64 (under qemu-user): the same output"
./nbody 2000000 > native.txt
hcontainer run --isa aarch64 ./nbody 2000000 > aarch64.txt
cmp native.txt aarch64.txt && echo "identical: $(wc -l < native.txt) lines"
echo
echo "== nbody migrating x86_64 -> aarch64 -> x86_64 while it runs (after 300 ms on each)"
./nbody 20000000 > native.txt
hcontainer run --migrate x86_64,aarch64,x86_64 --every 300ms ./nbody 20000000 > migrated.txt
cmp native.txt migrated.txt && echo "output identical to the uninterrupted run"
echo
echo "== recursion: 2000 live frames migrate x86_64 -> aarch64 -> x86_64"
./recursion > native.txt || true
hcontainer run --migrate x86_64,aarch64,x86_64 --at-point 2100 ./recursion > migrated.txt || true
cmp native.txt migrated.txt && echo "output and exit code identical to the uninterrupted run"
echo
echo "== files: a file written before and read after ten migrations, stdout buffered in flight"
./files native-out.txt > native.txt
hcontainer run --migrate x86_64,aarch64,x86_64,aarch64,x86_64,aarch64,x86_64,aarch64,x86_64,aarch64,x86_64 \
    --at-point 6000 ./files migrated-out.txt > migrated.txt
cmp native.txt migrated.txt && cmp native-out.txt migrated-out.txt && echo "stdout and the file identical to the uninterrupted run"
