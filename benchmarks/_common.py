"""Shared timing helpers and the seed article's three methods (POT issue #598)."""

import os
import time

import numpy as np
import ot
from joblib import Parallel, delayed

CORES = os.cpu_count()


def median_time(fn, repeat=3, before=None):
    """Median wall time of ``fn()`` over ``repeat`` runs (``before()`` untimed)."""
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def interleaved_median_times(functions, repeat=7):
    """Median times of several functions, run in turns so drift hits all alike."""
    times = {name: [] for name in functions}
    for _ in range(repeat):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def seed_loop(a, b, M, plans=True):
    """Method 1: a plain loop of ``ot.emd`` (or ``ot.emd2``) per slice."""
    if not plans:
        return np.array([ot.emd2(a, b, M[i]) for i in range(len(M))])
    R = np.zeros(M.shape)
    for i in range(len(M)):
        R[i] = ot.emd(a, b, M[i])
    return R


def seed_numpy(a, b, M):
    """Method 2: numpy take + stack (still a sequential loop)."""
    return np.stack([ot.emd(a, b, M.take(i, 0)) for i in range(M.shape[0])], axis=0)


def seed_joblib(a, b, M, n_jobs=4):
    """Method 3: one joblib (loky) task per slice, as the article recommends."""
    res = Parallel(n_jobs=n_jobs, max_nbytes=None)(
        delayed(ot.emd)(a, b, M.take(i, 0)) for i in range(M.shape[0])
    )
    return np.stack(res, axis=0)


def kill_loky_workers():
    """Make the next loky call a cold start."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def compiled_limit(a, b, M):
    """The compiled network simplex alone, serial, divided by the core count."""
    from ot.lp.emd_wrap import emd_c

    def run():
        for i in range(len(M)):
            emd_c(a, b, M[i], 100_000, 1)

    return median_time(run) / CORES


def report(title, rows, reference):
    """Print ``rows`` of (name, seconds) with their speed-up over ``reference``."""
    base = dict(rows)[reference]
    print(f"\n{title}")
    print(f"  {'method':<44} {'median s':>9} {'vs ' + reference:>24}")
    for name, seconds in rows:
        print(f"  {name:<44} {seconds:>9.3f} {base / seconds:>23.2f}x")
