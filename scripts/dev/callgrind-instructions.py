#!/usr/bin/env python3
"""Executed count of every instruction of one function (diagnosis).

    valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file=OUT EXE ...
    scripts/dev/callgrind-instructions.py OUT EXE FUNCTION [MIN]

Prints `count address instruction` for each instruction of FUNCTION (its
recursive instances added in) executed more than MIN times, in address
order; `sort -rn` shows the hot ones. EXE must be the file callgrind ran
(an hcc build's `hcontainer strip` copy, or a plain build without debug
information: valgrind 3.19 cannot read clang-22's DWARF 5).
"""
import collections
import re
import subprocess
import sys


def counts(path, function):
    out = collections.Counter()
    names, cur, skip, last = {}, False, False, 0
    for line in open(path):
        line = line.rstrip("\n")
        m = re.match(r"^fn=\((\d+)\)(?: (.*))?$", line)
        if m:
            if m.group(2):
                names[m.group(1)] = m.group(2)
            cur = (names.get(m.group(1)) or "").split("'")[0] == function
            continue
        m = re.match(r"^cfn=\((\d+)\) (.*)$", line)
        if m:
            names[m.group(1)] = m.group(2)
        if line.startswith("calls="):
            skip = True  # the next line is the call's cost, not the instruction's
            continue
        m = re.match(r"^(0x[0-9a-f]+|[+-]\d+|\*)\s+\S+\s+(\d+)", line)
        if m:
            a = m.group(1)
            if a.startswith("0x"):
                last = int(a, 16)
            elif a != "*":
                last += int(a)
            if skip:
                skip = False
            elif cur:
                out[last] += int(m.group(2))
    return out


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    path, exe, function = sys.argv[1:4]
    least = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    c = counts(path, function)
    dis = subprocess.run(
        ["llvm-objdump-22", "-d", "--no-show-raw-insn", f"--disassemble-symbols={function}", exe],
        capture_output=True, text=True, check=True,
    ).stdout
    for line in dis.splitlines():
        m = re.match(r"\s+([0-9a-f]+):\s+(.*)", line)
        if m and c.get(int(m.group(1), 16), 0) > least:
            print(f"{c[int(m.group(1), 16)]:10d} {m.group(1)} {m.group(2)}")


if __name__ == "__main__":
    main()
