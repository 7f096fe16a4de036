#!/usr/bin/env python3
"""Per-function difference of two callgrind runs (diagnosis, not a benchmark).

    scripts/dev/callgrind-functions.py PLAIN.out HCC.out [ROWS]

Prints the total difference, then the functions whose instruction counts
grew most: extra, plain, hcc, percent, name. Recursive instances
(`f'2`) are rows of their own. Functions valgrind names by address only
(musl's assembly `memcpy`, whose symbol has no size) get the name of the
global symbol at that address in the executable, so the two runs' rows
meet.
"""
import bisect
import re
import subprocess
import sys


def symbols(exe, cache={}):
    """Sorted (address, name) of an executable's text symbols, globals first
    among those at one address."""
    if exe not in cache:
        try:
            out = subprocess.run(
                ["nm", "-n", "--defined-only", exe],
                capture_output=True, text=True, check=True,
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            out = ""
        table = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in "Tt":
                table.append((int(parts[0], 16), parts[1] != "T", parts[2]))
        table.sort()
        cache[exe] = [(a, n) for a, _, n in table]
    return cache[exe]


def named(name, exe):
    """`name`, or for an address the symbol that starts there."""
    if not re.fullmatch(r"0x[0-9a-f]+", name) or not exe:
        return name
    table = symbols(exe)
    addr = int(name, 16)
    i = bisect.bisect_left(table, (addr, ""))
    if i < len(table) and table[i][0] == addr:
        return table[i][1]
    return name


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
            rest = m.group(2)
            exe = re.search(r"\[(.*)\]$", rest)
            name = rest.split(":", 1)[-1].split(" [")[0]
            name = named(name, exe.group(1) if exe else None)
            counts[name] = counts.get(name, 0) + n
    return counts


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    plain, hcc = per_function(sys.argv[1]), per_function(sys.argv[2])
    rows = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    names = sorted(set(plain) | set(hcc), key=lambda k: plain.get(k, 0) - hcc.get(k, 0))
    total = "PROGRAM TOTALS"
    print("total extra", hcc.get(total, 0) - plain.get(total, 0))
    for k in names[:rows]:
        a, b = plain.get(k, 0), hcc.get(k, 0)
        print(f"{b - a:>12,} {a:>12,} {b:>12,} {100 * (b - a) / max(a, 1):7.1f}% {k}")


if __name__ == "__main__":
    main()
