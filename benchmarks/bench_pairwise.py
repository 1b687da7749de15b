"""Pairwise EMD matrices: skemd against the double loop and ``wasserstein``.

1. 200 point clouds of 30 points in 2-D, squared Euclidean ground cost, the
   full symmetric (n, n) matrix: ``PairwiseEMDTransformer(n_jobs=2)`` against
   the double loop of ``ot.emd2(a, b, ot.dist(x, y))`` over the upper triangle
   and against ``wasserstein.PairwiseEMD(beta=2, num_threads=2)`` (C++/OpenMP,
   GPL: installed in the benchmark's environment only, never a dependency;
   skipped when absent). skemd and wasserstein are timed in turns (median
   of 7) so that the machine's drift hits both alike.
2. 500 ``load_digits`` images as 8x8 histograms, squared Euclidean ground
   cost between pixel positions: skemd against the double loop (timed on the
   first 100 images and scaled by the number of pairs).

Every skemd matrix is checked against the loop before timing.
Run: ``python benchmarks/bench_pairwise.py``
"""

import numpy as np
import ot
from _common import CORES, interleaved_median_times, median_time
from sklearn.datasets import load_digits

from skemd import PairwiseEMDTransformer


def loop_clouds(X):
    w = np.full(X.shape[1], 1.0 / X.shape[1])
    n = len(X)
    D = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            D[i, j] = D[j, i] = ot.emd2(w, w, ot.dist(X[i], X[j]))
    return D


def loop_histograms(H, C):
    n = len(H)
    D = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            D[i, j] = D[j, i] = ot.emd2(H[i], H[j], C)
    return D


def wasserstein_clouds(X):
    import wasserstein

    events = np.concatenate([np.full((*X.shape[:2], 1), 1.0 / X.shape[1]), X], axis=2)
    pairwise = wasserstein.PairwiseEMD(
        R=1.0, beta=2.0, norm=True, num_threads=CORES, verbose=0
    )
    pairwise(events)
    return np.asarray(pairwise.emds())


def clouds():
    X = np.random.default_rng(0).random((200, 30, 2))
    skemd = PairwiseEMDTransformer(n_jobs=CORES)
    D = skemd.fit_transform(X)
    reference = loop_clouds(X)
    assert np.allclose(D, reference, rtol=1e-9, atol=1e-12)
    contenders = {"skemd PairwiseEMDTransformer": lambda: skemd.fit_transform(X)}
    try:
        D_w = wasserstein_clouds(X)
    except ImportError:
        print("(wasserstein not installed: pip install wasserstein to compare)")
    else:
        print(f"wasserstein's values: max abs. diff {np.abs(D_w - D).max():.1e}")
        contenders["wasserstein.PairwiseEMD"] = lambda: wasserstein_clouds(X)
    rows = [("double loop of ot.emd2(ot.dist)", median_time(lambda: loop_clouds(X), 1))]
    rows += interleaved_median_times(contenders).items()
    report("200 clouds x 30 points, 2-D, sqeuclidean, full matrix", rows)


def digits():
    data = load_digits().data[:500]
    grid = np.indices((8, 8)).reshape(2, -1).T.astype(float)
    C = ot.dist(grid, grid)
    H = data / data.sum(axis=1, keepdims=True)
    skemd = PairwiseEMDTransformer(support=grid, n_jobs=CORES)
    D = skemd.fit_transform(data)
    head = loop_histograms(H[:100], C)
    assert np.allclose(D[:100, :100], head, rtol=1e-9, atol=1e-12)
    scale = (500 * 499) / (100 * 99)
    rows = [
        (
            "double loop of ot.emd2 (scaled from 100)",
            median_time(lambda: loop_histograms(H[:100], C), 1) * scale,
        ),
        (
            "skemd PairwiseEMDTransformer",
            median_time(lambda: skemd.fit_transform(data)),
        ),
    ]
    report("500 digits as 8x8 histograms, sqeuclidean ground cost", rows)


def report(title, rows):
    base = rows[0][1]
    print(f"\n{title}")
    for name, seconds in rows:
        print(f"  {name:<42} {seconds:8.3f} s  {base / seconds:6.1f}x vs loop")


if __name__ == "__main__":
    clouds()
    digits()
