"""Batched unbalanced Sinkhorn against a loop of ``ot.unbalanced.sinkhorn_unbalanced2``.

k=1000 problems of n=100: costs uniform in [0, 1], Dirichlet weights of
masses 1 (``a``) and 1.5 (``b``), one pair per problem, ``reg=0.05``,
``reg_m=1`` and POT's defaults (``tol=1e-6``, 1000 iterations). skemd runs on
1 and on all cores; each run is timed in turns with POT's loop, so that the
machine's drift hits both alike. It prints the median wall times and the
speed-ups, the median CPU times of this process (which other work on a
shared machine does not inflate as much: skemd on all cores is only faster
in wall time if the cores are free), the largest relative difference from
POT's values and how many problems converged.

Run: ``python benchmarks/bench_unbalanced.py [--quick]``
"""

import argparse
import time

import numpy as np
import ot
from _common import CORES, interleaved_median_times

from skemd import emd_batch

K, N, REG, REG_M = 1000, 100, 0.05, 1.0


def problems():
    rng = np.random.default_rng(0)
    M = rng.random((K, N, N))
    a = rng.dirichlet(np.ones(N), size=K)
    b = 1.5 * rng.dirichlet(np.ones(N), size=K)
    return M, a, b


def pot_loop(M, a, b):
    return np.array(
        [
            ot.unbalanced.sinkhorn_unbalanced2(ai, bi, Mi, REG, REG_M)
            for Mi, ai, bi in zip(M, a, b, strict=True)
        ]
    )


def skemd_unbalanced(M, a, b, n_jobs):
    return emd_batch(
        M,
        a,
        b,
        method="unbalanced",
        reg=REG,
        method_params={"reg_m": REG_M},
        n_jobs=n_jobs,
    )


def with_cpu_time(fn, record):
    """``fn``, appending the CPU time of this process that each call takes."""

    def run():
        start = time.process_time()
        fn()
        record.append(time.process_time() - start)

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repeat per timing")
    repeat = 1 if parser.parse_args().quick else 3
    M, a, b = problems()
    print(
        f"k={K} n={N}, masses 1 and 1.5, reg={REG}, reg_m={REG_M}, tol=1e-6, "
        f"max_iter=1000, {CORES} cores"
    )
    jobs = sorted({1, CORES})
    runs = {"loop": lambda: pot_loop(M, a, b)}
    runs |= {f"n_jobs={j}": (lambda j=j: skemd_unbalanced(M, a, b, j)) for j in jobs}
    cpu = {name: [] for name in runs}
    times = interleaved_median_times(
        {name: with_cpu_time(fn, cpu[name]) for name, fn in runs.items()}, repeat
    )
    cpu = {name: float(np.median(t)) for name, t in cpu.items()}
    expected = pot_loop(M, a, b)
    print(
        f"  loop of ot.unbalanced.sinkhorn_unbalanced2      {times['loop']:7.3f} s "
        f"(CPU {cpu['loop']:.3f} s)"
    )
    for j in jobs:
        res = skemd_unbalanced(M, a, b, j)
        rel = np.max(np.abs(res.distance / expected - 1))
        name = f"n_jobs={j}"
        print(
            f"  skemd emd_batch(method='unbalanced', {name})  {times[name]:7.3f} s "
            f"(CPU {cpu[name]:.3f} s): {times['loop'] / times[name]:.1f}x faster "
            f"(CPU {cpu['loop'] / cpu[name]:.1f}x); max rel. diff from POT "
            f"{rel:.1e}; converged {res.converged.sum()}/{K}"
        )


if __name__ == "__main__":
    main()
