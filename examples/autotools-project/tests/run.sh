#!/bin/sh
# make check: wordfreq's output on a known text.
set -e
./wordfreq -n 5 < "$srcdir/tests/input.txt" > wordfreq.out
diff -u "$srcdir/tests/expected.txt" wordfreq.out
