#!/usr/bin/env bash
# fetch-source.sh PKG DEST: the upstream sources of Debian source package PKG,
# unpacked into DEST/PKG (once; later calls return at once). Real-world test
# inputs come from here at test time and are never committed.
set -euo pipefail
pkg=$1
dest=$2
mkdir -p "$dest"
cd "$dest"
[ -f "$pkg/.fetched" ] && exit 0
mkdir -p downloads
( cd downloads && apt-get source --download-only -qq "$pkg" >/dev/null 2>&1 ) || {
  echo "fetch-source: 'apt-get source $pkg' failed: run scripts/setup.sh (it adds the deb-src entry)" >&2
  exit 1
}
orig=$(ls downloads/"${pkg}"_*.orig.tar.* | grep -v -- '-www\.' | head -n 1)
rm -rf "$pkg.tmp" && mkdir "$pkg.tmp"
tar xf "$orig" -C "$pkg.tmp" --strip-components=1
rm -rf "$pkg" && mv "$pkg.tmp" "$pkg"
touch "$pkg/.fetched"
