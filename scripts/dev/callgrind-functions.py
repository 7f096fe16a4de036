#!/usr/bin/env python3
"""Per-function difference of two callgrind runs (diagnosis, not a benchmark).

    scripts/dev/callgrind-functions.py PLAIN.out HCC.out [ROWS]

Prints the total difference, then the functions whose instruction counts
grew most: extra, plain, hcc, percent, name. Recursive instances
(`f'2`) are rows of their own. Aliases (`memcpy` and `__memcpy_fwd`)
may show under different names in the two runs.
"""
import re
import subprocess
import sys


def per_function(path):
    out = subprocess.run(
        ["callgrind_annotate", "--threshold=100", path],
        capture_output=True, text=True, check=True,
    ).stdout
    counts = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)", line)
        if m:
            n = int(m.group(1).replace(",", ""))
            name = m.group(2).split(":", 1)[-1].split(" [")[0]
            counts[name] = counts.get(name, 0) + n
    return counts


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    plain, hcc = per_function(sys.argv[1]), per_function(sys.argv[2])
    rows = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    names = sorted(set(plain) | set(hcc), key=lambda k: plain.get(k, 0) - hcc.get(k, 0))
    print("total extra", sum(hcc.values()) - sum(plain.values()))
    for k in names[:rows]:
        a, b = plain.get(k, 0), hcc.get(k, 0)
        print(f"{b - a:>12,} {a:>12,} {b:>12,} {100 * (b - a) / max(a, 1):7.1f}% {k}")


if __name__ == "__main__":
    main()
