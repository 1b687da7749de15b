"""Where does the assignment route stop beating the network simplex?

Times ``scipy.optimize.linear_sum_assignment`` and, when installed, the
``lapjv`` package in double precision (``skemd[fast]``) against POT's
compiled network simplex on uniform square problems of growing n, serially,
for three cost families: i.i.d. uniform costs, squared Euclidean costs between two 2-D point
clouds drawn from the same square, and the same with the second cloud shifted
away (the hard case for the Hungarian method). The Hungarian solver wins on the
first two at every n measured, but on shifted clouds it loses past n of about
100, so ``skemd._solvers._assignment.ASSIGNMENT_MAX_N`` is that crossover.
The n from which lapjv beats scipy is ``LAPJV_MIN_N``.

Run: ``python benchmarks/bench_crossover.py``
"""

import time

import numpy as np
from ot.lp.emd_wrap import emd_c
from scipy.optimize import linear_sum_assignment

try:
    from lapjv import lapjv
except ImportError:
    lapjv = None


def _median_time(fn, problems, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for M in problems:
            fn(M)
        times.append((time.perf_counter() - start) / len(problems))
    return float(np.median(times))


def _costs(family, rng, k, n):
    if family == "uniform":
        return rng.random((k, n, n))
    x, y = rng.random((2, k, n, 2))
    y += 0.5 if family == "shifted" else 0.0
    return ((x[:, :, None, :] - y[:, None, :, :]) ** 2).sum(-1)


def main():
    rng = np.random.default_rng(0)
    print(
        f"{'costs':>8} {'n':>5} {'simplex ms':>11} {'scipy ms':>9} {'lapjv ms':>9}"
        f" {'simplex/scipy':>14} {'scipy/lapjv':>12}"
    )
    for family in ("uniform", "sqeuclid", "shifted"):
        for n in (5, 10, 30, 60, 100, 150, 300, 600):
            k = int(max(2, 20000 // n**1.5))
            problems = _costs(family, rng, k, n)
            w = np.full(n, 1.0 / n)
            t_simplex = _median_time(lambda M, w=w: emd_c(w, w, M, 10**7, 1), problems)
            t_assign = _median_time(linear_sum_assignment, problems)
            t_lapjv = np.nan
            if lapjv is not None:
                t_lapjv = _median_time(lambda M: lapjv(M, force_doubles=True), problems)
            print(
                f"{family:>8} {n:>5} {t_simplex * 1e3:>11.3f} "
                f"{t_assign * 1e3:>9.3f} {t_lapjv * 1e3:>9.3f} "
                f"{t_simplex / t_assign:>14.2f} {t_assign / t_lapjv:>12.2f}"
            )


if __name__ == "__main__":
    main()
