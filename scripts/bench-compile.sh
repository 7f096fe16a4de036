#!/usr/bin/env bash
# bench-compile.sh: compile time and output size of hcc against plain
# clang-22 -O2 (scripts/musl-clang), on real projects built by their own build
# systems (Lua 5.4: make; sqlite3 shell: configure + make, only make timed).
# Prints the Markdown tables of BENCHMARKS.md.
# Usage: scripts/bench-compile.sh [WORKDIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$root/target/bench-compile}
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bins
export PATH=$root/target/release:$PATH
for p in lua5.4 sqlite3; do "$root/scripts/fetch-source.sh" "$p" "$root/target/sources"; done
mkdir -p "$work"
plain=$root/scripts/musl-clang

# build PROJECT TAG CC ISA: builds a fresh tree in $work/PROJECT-TAG with its
# own build system; prints "wall cpu" seconds of the compile and link.
build() {
  local proj=$1 tag=$2 cc=$3 dir=$work/$1-$2
  export MUSL_ISA=$4
  rm -rf "$dir"
  case $proj in
    lua) cp -a "$root/target/sources/lua5.4" "$dir"; cmd=(make -j2 linux CC="$cc") ;;
    sqlite3) cp -a "$root/target/sources/sqlite3" "$dir"
      # The aarch64 baseline cannot run configure's test programs here.
      local host=(); [ "$4" = aarch64 ] && [ "$cc" = "$plain" ] && host=(--host=aarch64-linux-musl)
      (cd "$dir" && ./configure CC="$cc" "${host[@]}" --disable-shared --disable-tcl --disable-readline \
        >"$work/configure.log" 2>&1) \
        || { echo "configure failed in $dir" >&2; tail -n 30 "$work/configure.log" >&2; exit 1; }
      cmd=(make -j2 sqlite3) ;;
  esac
  (cd "$dir" && /usr/bin/time -f "%e %U %S" -o "$work/time.txt" "${cmd[@]}" >"$work/build.log" 2>&1) \
    || { echo "build failed in $dir" >&2; tail -n 30 "$work/build.log" >&2; exit 1; }
  awk '{printf "%.1f %.1f\n", $1, $2 + $3}' "$work/time.txt"
}
exe() { case $1 in lua) echo "$work/lua-$2/src/lua" ;; sqlite3) echo "$work/sqlite3-$2/sqlite3" ;; esac; }
# Bytes of the file without debug information (what is shipped): plain
# builds through llvm-objcopy, hcc's through `hcontainer strip`, which also
# reaches the variant packed inside.
size() {
  case $1 in
    *-hcc/*) hcontainer strip "$1" -o "$work/stripped" 2>/dev/null ;;
    *) llvm-objcopy-22 --strip-debug "$1" "$work/stripped" ;;
  esac
  stat -c %s "$work/stripped"
}

times=() sizes=()
for proj in lua sqlite3; do
  read -r bw bc < <(build $proj x86_64 "$plain" x86_64)
  read -r hw hc < <(build $proj hcc hcc x86_64)
  build $proj aarch64 "$plain" aarch64 >/dev/null
  times+=("$(awk -v p=$proj -v bw="$bw" -v bc="$bc" -v hw="$hw" -v hc="$hc" \
    'BEGIN{printf "| %s | %.1f / %.1f | %.1f / %.1f | %.2f | %.2f |", p, bw, bc, hw, hc, hw/bw, hc/bc}')")
  sx=$(size "$(exe $proj x86_64)") sa=$(size "$(exe $proj aarch64)") sh=$(size "$(exe $proj hcc)")
  sizes+=("$(awk -v p=$proj -v x="$sx" -v a="$sa" -v h="$sh" \
    'BEGIN{printf "| %s | %d | %d | %d | %d | %.2f |", p, x, a, x+a, h, h/(x+a)}')")
done
echo "Compile time (make -j2 on $(nproc) cores; CPU = user + system):"
echo
echo "| project | clang-22 -O2, x86_64 only: wall / CPU (s) | hcc, both ISAs: wall / CPU (s) | wall ratio | CPU ratio |"
echo "|---|---|---|---|---|"
printf '%s\n' "${times[@]}"
echo
echo "Output size (bytes, debug information stripped):"
echo
echo "| project | plain x86_64 | plain aarch64 | sum | hcc multi-ISA ELF | ratio |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${sizes[@]}"
