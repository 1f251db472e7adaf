"""Times numpy's np.sort on a raw little-endian file: prints the best time in seconds.

Usage: sort_numpy.py FILE DTYPE REPEATS   (DTYPE: u8 or f8)
Called by benches/sort_ratios.rs so that numpy sorts the very data outcore sorts.
"""
import sys
import time

import numpy as np

path, dtype, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = np.fromfile(path, dtype="<" + dtype)
best = float("inf")
for _ in range(repeats):
    a = data.copy()
    t = time.perf_counter()
    a.sort()  # numpy's default kind ("quicksort": introsort, SIMD-accelerated where available)
    best = min(best, time.perf_counter() - t)
print(best)
