"""Batched Sinkhorn against a loop of ``ot.sinkhorn2`` and ``ot.batch``.

k=1000 problems of n=100, uniform marginals, POT's default tolerance (1e-9)
and iteration limit (1000), at reg = 0.05, 0.01 and 0.001. For each reg it
prints the median times, skemd's speed-ups, the worst relative difference from
POT's values, and how many problems converged. POT's loop uses
``method="sinkhorn"`` for reg >= 0.01 and ``"sinkhorn_log"`` below, where
plain Sinkhorn underflows. Slow baselines are timed on a slice and scaled to
k (marked "scaled"): ``ot.batch.solve_batch`` always, and POT's loop at
reg=0.001, where no problem converges within 1000 iterations.

Run: ``python benchmarks/bench_sinkhorn.py [--quick]``
"""

import argparse
import warnings

import numpy as np
import ot
import ot.batch
from _common import CORES, interleaved_median_times, median_time

from skemd import emd_batch


def pot_loop(M, reg, method):
    w = np.full(M.shape[1], 1.0 / M.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([ot.sinkhorn2(w, w, Mi, reg, method=method) for Mi in M])


def skemd_sinkhorn(M, reg):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return emd_batch(M, method="sinkhorn", reg=reg, n_jobs=CORES)


def pot_batch(M, reg):
    method = "log_sinkhorn" if reg < 0.01 else "sinkhorn"
    return ot.batch.solve_batch(M, reg=reg, method=method, tol=1e-9)


def scaled_time(fn, M, k, repeat):
    return median_time(lambda: fn(M), repeat) * k / len(M)


def run(M, reg, repeat):
    k = len(M)
    method = "sinkhorn" if reg >= 0.01 else "sinkhorn_log"
    loop_slice = M if reg >= 0.01 else M[:10]
    skemd_slice = M
    # Run in turns, so that the machine's drift hits both alike.
    turns = interleaved_median_times(
        {
            "loop": lambda: pot_loop(loop_slice, reg, method),
            "skemd": lambda: skemd_sinkhorn(skemd_slice, reg),
        },
        repeat,
    )
    t_loop = turns["loop"] * k / len(loop_slice)
    t_skemd = turns["skemd"]
    t_batch = scaled_time(lambda s: pot_batch(s, reg), M[:20], k, 1)
    res = skemd_sinkhorn(skemd_slice, reg)
    expected = pot_loop(loop_slice, reg, method)
    rel = np.max(np.abs(res.distance[: len(expected)] / expected - 1))
    print(f"\nreg={reg}")
    print(
        f"  loop of ot.sinkhorn2({method!r})  {t_loop:9.3f} s"
        f"{'  (scaled)' if len(loop_slice) < k else ''}"
    )
    print(f"  ot.batch.solve_batch              {t_batch:9.3f} s  (scaled)")
    print(
        f"  skemd emd_batch(method='sinkhorn') {t_skemd:8.3f} s"
        f"{'  (scaled)' if len(skemd_slice) < k else ''}"
    )
    print(
        f"  speed-up vs loop {t_loop / t_skemd:5.1f}x, vs ot.batch "
        f"{t_batch / t_skemd:6.1f}x; max rel. diff from POT {rel:.1e}; "
        f"converged {res.converged.sum()}/{len(skemd_slice)}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repeat per timing")
    repeat = 1 if parser.parse_args().quick else 5
    M = np.random.default_rng(0).random((1000, 100, 100))
    print(f"k=1000 n=100, uniform marginals, tol=1e-9, max_iter=1000, {CORES} cores")
    for reg in (0.05, 0.01, 0.001):
        run(M, reg, repeat)


if __name__ == "__main__":
    main()
