#!/usr/bin/env bash
# Installs every system package hcontainer needs, idempotently (DESIGN.md §4).
# Safe to run again: it only adds what is missing.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_pkgs=(clang-22 lld-22 llvm-22-dev libpolly-22-dev libzstd-dev qemu-user musl-dev
           musl-dev:arm64 gcc-aarch64-linux-gnu make cmake autoconf automake libtool
           dpkg-dev valgrind tcl xz-utils bzip2 byacc linux-libc-dev linux-libc-dev-arm64-cross)

# Debian source packages (real-world test inputs, fetched at test time): a
# deb-src entry derived from the machine's own Debian source entry.
src=/etc/apt/sources.list.d/debian.sources
debsrc=/etc/apt/sources.list.d/hcontainer-src.sources
if [ ! -f "$debsrc" ] && [ -f "$src" ]; then
  awk 'BEGIN{RS="";ORS="\n\n"} /Suites:[^\n]*bookworm( |$|\n|-updates)/ && !/security/ {print; exit}' "$src" \
    | sed -E 's/^Types:.*/Types: deb-src/; s/^Suites:.*/Suites: bookworm/' | $SUDO tee "$debsrc" >/dev/null
  new_sources=1
fi

missing=()
for p in "${need_pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  if [ -n "${new_sources:-}" ]; then $SUDO apt-get update -qq; fi
  exit 0
fi
echo "setup: installing ${missing[*]}" >&2

# bookworm-backports: derived from the machine's own Debian source entry so no
# host name is written by us.
bp=/etc/apt/sources.list.d/hcontainer-backports.sources
if [ ! -f "$bp" ] && [ -f "$src" ]; then
  awk 'BEGIN{RS="";ORS="\n\n"} /Suites:[^\n]*bookworm( |$|\n|-updates)/ && !/security/ {print; exit}' "$src" \
    | sed -E 's/^Suites:.*/Suites: bookworm-backports/' | $SUDO tee "$bp" >/dev/null
fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq -t bookworm-backports clang-22 lld-22 llvm-22-dev libpolly-22-dev
$SUDO apt-get install -y -qq libzstd-dev qemu-user musl-dev musl-dev:arm64 gcc-aarch64-linux-gnu \
  make cmake autoconf automake libtool dpkg-dev valgrind tcl xz-utils bzip2 byacc \
  linux-libc-dev linux-libc-dev-arm64-cross
