"""The search of entropy (KL-divergence) calibration: one divergence per candidate threshold of a histogram.

Written as :func:`qbench.reference.entropy_divergences` computes it in NumPy,
a candidate at a time; the sums run in another order, so a divergence may
differ in its last bits, never which threshold wins but for exact ties.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def kl_divergences(hist, levels, out):
    """For each candidate ``i`` in ``[levels, len(hist)]``: the KL divergence of the first ``i`` bins (the rest
    folded into bin ``i - 1``) from their merge into ``levels`` groups spread over each group's non-empty bins;
    ``out[i]`` (inf where the quantized histogram is empty). ``hist`` is float64."""
    bins = hist.shape[0]
    tail = np.zeros(bins + 1)
    for j in range(bins - 1, -1, -1):
        tail[j] = tail[j + 1] + hist[j]
    mass = np.zeros(levels)
    nonzero = np.zeros(levels)
    group = np.empty(bins, np.int64)
    for i in range(levels, bins + 1):
        # group[j] = (j * levels) // i, by steps: no division in the loops below.
        g = 0
        edge = i
        for j in range(i):
            while j * levels >= edge:
                g += 1
                edge += i
            group[j] = g
        mass[:] = 0.0
        nonzero[:] = 0.0
        for j in range(i):
            mass[group[j]] += hist[j]
            if hist[j] > 0:
                nonzero[group[j]] += 1.0
        ps = tail[0]
        qs = 0.0
        for j in range(i):
            if hist[j] > 0:
                qs += mass[group[j]] / max(nonzero[group[j]], 1.0)
        if qs == 0.0:
            out[i] = np.inf
            continue
        kl = 0.0
        for j in range(i):
            p = hist[j] + (tail[i] if j == i - 1 else 0.0)
            if p <= 0:
                continue
            p /= ps
            q = 0.0
            if hist[j] > 0:
                q = mass[group[j]] / max(nonzero[group[j]], 1.0) / qs
            if q == 0.0:
                q = 1e-12
            kl += p * np.log(p / q)
        out[i] = kl


@njit(cache=True, nogil=True)
def abs_histogram(x, edges, hist):
    """``np.histogram(np.abs(x), bins=len(hist), range=(0, edges[-1]))[0]`` into ``hist`` (int64), bin for bin:
    NumPy's uniform-bin rule (scaled index, then corrected against the float64 ``edges`` it made with
    ``np.linspace``; the last bin closed). Every ``|x|`` must lie in ``[0, edges[-1]]``."""
    bins = hist.shape[0]
    denom = edges[bins] - edges[0]
    for i in range(x.shape[0]):
        v = abs(x[i])
        k = int((v - edges[0]) / denom * bins)
        if k == bins:
            k -= 1
        if v < edges[k]:
            k -= 1
        if v >= edges[k + 1] and k != bins - 1:
            k += 1
        hist[k] += 1
