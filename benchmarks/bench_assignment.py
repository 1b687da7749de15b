"""The assignment route with lapjv (``skemd[fast]``) against scipy and the seed.

1. Serially, per problem: ``lapjv(force_doubles=True)``, with skemd's
   certificate check and without, against ``scipy.optimize
   .linear_sum_assignment``, at growing n: where lapjv starts to win is
   ``LAPJV_MIN_N``.
2. lapjv on 2 threads against 1 (does it release the GIL?).
3. The seed's uniform case (k=1000, n=100): the seed's loop of ``ot.emd``
   (plans) and ``ot.emd2`` (distances) against ``emd_batch`` on 2 threads
   with lapjv and with scipy only, all timed in turns, values checked equal.

Run: ``python benchmarks/bench_assignment.py`` (needs ``pip install lapjv``).
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from _common import CORES, interleaved_median_times, seed_loop
from lapjv import lapjv
from scipy.optimize import linear_sum_assignment

from skemd import emd_batch
from skemd._solvers import _assignment


def _certified_lapjv(C):
    cols, _, (_, u, v) = lapjv(C, force_doubles=True)
    return _assignment.certified(C, cols, u, v)


def per_problem():
    rng = np.random.default_rng(0)
    print(
        f"{'n':>5} {'scipy µs':>9} {'lapjv µs':>9} {'+check µs':>10} {'scipy/lapjv':>12}"
    )
    for n in (10, 30, 50, 60, 70, 80, 100, 150, 200):
        problems = rng.random((max(20, 20000 // n), n, n))
        times = interleaved_median_times(
            {
                "scipy": lambda P=problems: [linear_sum_assignment(C) for C in P],
                "lapjv": lambda P=problems: [lapjv(C, force_doubles=True) for C in P],
                "checked": lambda P=problems: [_certified_lapjv(C) for C in P],
            },
            repeat=5,
        )
        us = {name: t / len(problems) * 1e6 for name, t in times.items()}
        print(
            f"{n:>5} {us['scipy']:>9.1f} {us['lapjv']:>9.1f} {us['checked']:>10.1f} "
            f"{us['scipy'] / us['checked']:>12.2f}"
        )


def threads():
    problems = np.random.default_rng(1).random((400, 100, 100))

    def solve(P):
        for C in P:
            lapjv(C, force_doubles=True)

    def two_threads():
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(solve, np.array_split(problems, 2)))

    times = interleaved_median_times(
        {"one": lambda: solve(problems), "two": two_threads}, repeat=5
    )
    print(f"\nlapjv n=100, 2 threads against 1: {times['one'] / times['two']:.2f}x")


def seed_case():
    k, n = 1000, 100
    M = np.random.default_rng(0).random((k, n, n))
    w = np.full(n, 1.0 / n)
    lapjv_solver = _assignment._lapjv

    def skemd(return_plan, fast):
        _assignment._lapjv = lapjv_solver if fast else None
        try:
            return emd_batch(M, return_plan=return_plan, n_jobs=CORES)
        finally:
            _assignment._lapjv = lapjv_solver

    expected = seed_loop(w, w, M, plans=False)
    for fast in (True, False):
        np.testing.assert_allclose(skemd(False, fast).distance, expected, rtol=1e-12)
    times = interleaved_median_times(
        {
            "loop plans": lambda: seed_loop(w, w, M),
            "loop distances": lambda: seed_loop(w, w, M, plans=False),
            "lapjv plans": lambda: skemd(True, True),
            "lapjv distances": lambda: skemd(False, True),
            "scipy plans": lambda: skemd(True, False),
            "scipy distances": lambda: skemd(False, False),
        },
        repeat=5,
    )
    print(f"\nThe seed's uniform case, k={k} n={n}, {CORES} threads (median of 5):")
    for what in ("plans", "distances"):
        loop = times[f"loop {what}"]
        print(
            f"  {what:>9}: loop {loop:.3f} s; skemd with lapjv "
            f"{times[f'lapjv {what}']:.3f} s ({loop / times[f'lapjv {what}']:.1f}x), "
            f"scipy only {times[f'scipy {what}']:.3f} s "
            f"({loop / times[f'scipy {what}']:.1f}x)"
        )


if __name__ == "__main__":
    per_problem()
    threads()
    seed_case()
