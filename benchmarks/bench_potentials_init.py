"""Warm starts through ``emd_batch(..., potentials_init=...)`` (issue #14.5).

The use it is built for: a batch is solved with ``return_duals=True``, its
costs change a little (an iteration of an outer algorithm, the next time
step), and the batch is solved again from the first solve's potentials.
k=1000 problems of n=100, squared Euclidean costs between random 2-D clouds,
random positive weights shared by the batch (so every problem goes to the
network simplex). The second batch is ``M0 * (1 + eps * U)`` with U uniform
in [0, 1]; "unrelated" is a fresh batch of independent clouds, where the
potentials are no help.

In turns in one run (median of ``--repeat``, 5 by default), for each batch:

- ``emd_batch(M1, a, b)``, cold;
- ``emd_batch(M1, a, b, potentials_init=(res0.dual_a, res0.dual_b))``;
- a loop of ``ot.emd2(a, b, M1[i])`` and of ``ot.emd2(..., potentials_init=)``
  (POT 0.9.7's own warm start), as the baseline;

with ``n_jobs=1`` and ``n_jobs=2``. Every warm distance equals the cold one
to 1e-12 relative (checked).

Run: ``python benchmarks/bench_potentials_init.py [--repeat N]``
"""

import argparse

import numpy as np
import ot
from _common import interleaved_median_times

from skemd import emd_batch

K, N = 1000, 100


def clouds(rng):
    x, y = rng.random((K, N, 2)), rng.random((K, N, 2))
    return ((x[:, :, None] - y[:, None]) ** 2).sum(-1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    rng = np.random.default_rng(0)
    a, b = rng.random(N) + 0.1, rng.random(N) + 0.1
    a, b = a / a.sum(), b / b.sum()
    M0 = clouds(rng)
    first = emd_batch(M0, a, b, return_duals=True)
    init = (first.dual_a, first.dual_b)
    batches = {
        f"M0 * (1 + {eps:g} U)": M0 * (1 + eps * rng.random(M0.shape))
        for eps in (1e-3, 1e-2, 1e-1)
    }
    batches["unrelated"] = clouds(rng)
    print(f"k={K} n={N}, non-uniform weights, network simplex; median of {repeat}")
    for title, M1 in batches.items():
        cold = emd_batch(M1, a, b).distance
        warm = emd_batch(M1, a, b, potentials_init=init).distance
        gap = np.max(np.abs(warm - cold) / cold)
        if gap > 1e-12:
            raise AssertionError(f"{title}: warm distances differ by {gap:.1e}")
        functions = {
            "POT loop, cold": lambda M1=M1: [ot.emd2(a, b, Mi) for Mi in M1],
            "POT loop, warm": lambda M1=M1: [
                ot.emd2(a, b, Mi, potentials_init=(u, v))
                for Mi, u, v in zip(M1, *init, strict=True)
            ],
        }
        for n_jobs in (1, 2):
            functions[f"emd_batch n_jobs={n_jobs}, cold"] = (
                lambda M1=M1, n_jobs=n_jobs: emd_batch(M1, a, b, n_jobs=n_jobs)
            )
            functions[f"emd_batch n_jobs={n_jobs}, warm"] = (
                lambda M1=M1, n_jobs=n_jobs: emd_batch(
                    M1, a, b, potentials_init=init, n_jobs=n_jobs
                )
            )
        times = interleaved_median_times(functions, repeat=repeat)
        print(f"\n{title} (warm distances equal cold to {gap:.1e})")
        for name in functions:
            print(f"  {name:<28} {times[name]:7.3f} s")
        print("  warm / cold:")
        for who in ("POT loop", "emd_batch n_jobs=1", "emd_batch n_jobs=2"):
            ratio = times[f"{who}, warm"] / times[f"{who}, cold"]
            print(f"    {who:<26} {ratio:6.2f}")
        best = times["emd_batch n_jobs=2, warm"]
        print(
            f"  POT's warm loop / emd_batch n_jobs=2 warm: {times['POT loop, warm'] / best:.1f}x"
        )


if __name__ == "__main__":
    main()
