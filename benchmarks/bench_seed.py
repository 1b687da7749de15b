"""skemd against the seed article's three methods, timed in the same run.

Cases: k=1000 n=100 (plans and distances, uniform and non-uniform marginals)
and k=20000 n=10. Prints medians and speed-ups over the seed's loop, the
seed's joblib recipe cold and warm, and the compiled-solver "limit".

Run: ``python benchmarks/bench_seed.py [--quick]``
"""

import argparse

import numpy as np
import ot
from _common import (
    compiled_limit,
    kill_loky_workers,
    median_time,
    report,
    seed_joblib,
    seed_loop,
    seed_numpy,
)

from skemd import BatchEMDTransformer, emd_batch


def run_case(k, n, uniform, plans, with_joblib=True, repeat=3):
    rng = np.random.default_rng(0)
    M = rng.random((k, n, n))
    if uniform:
        a = b = np.full(n, 1.0 / n)
        skemd_a = skemd_b = None
    else:
        a, b = rng.dirichlet(np.ones(n), size=2)
        skemd_a, skemd_b = a, b
    what = "plans" if plans else "distances"
    title = f"k={k} n={n}, {'uniform' if uniform else 'non-uniform'} marginals, {what}"

    expected = seed_loop(a, b, M, plans=False)
    got = emd_batch(M, skemd_a, skemd_b, n_jobs=2).distance
    assert np.allclose(got, expected, rtol=1e-9, atol=0), "skemd differs from POT"

    rows = [
        (
            "seed loop (ot.emd per slice)",
            median_time(lambda: seed_loop(a, b, M, plans), repeat),
        )
    ]
    if plans:
        rows.append(
            ("seed numpy take+stack", median_time(lambda: seed_numpy(a, b, M), repeat))
        )
    if with_joblib and plans:
        rows.append(
            (
                "seed joblib n_jobs=4 per slice, cold",
                median_time(
                    lambda: seed_joblib(a, b, M), repeat, before=kill_loky_workers
                ),
            )
        )
        seed_joblib(a, b, M)
        rows.append(
            (
                "seed joblib n_jobs=4 per slice, warm",
                median_time(lambda: seed_joblib(a, b, M), repeat),
            )
        )
    rows.append(
        (
            "skemd.emd_batch n_jobs=2",
            median_time(
                lambda: emd_batch(M, skemd_a, skemd_b, return_plan=plans, n_jobs=2),
                repeat,
            ),
        )
    )
    est = BatchEMDTransformer(
        output="plan" if plans else "distance", a=skemd_a, b=skemd_b, n_jobs=2
    )
    rows.append(
        (
            "skemd.BatchEMDTransformer n_jobs=2",
            median_time(lambda: est.fit_transform(M), repeat),
        )
    )
    rows.append(("limit: compiled simplex serial / cores", compiled_limit(a, b, M)))
    report(title, rows, "seed loop (ot.emd per slice)")
    return dict(rows)


def overhead_per_problem(k=20000, n=10, repeat=3):
    """skemd's own cost per problem: serial emd_batch minus the bare solver loop."""
    from ot.lp.emd_wrap import emd_c

    rng = np.random.default_rng(0)
    M = rng.random((k, n, n))
    a, b = rng.dirichlet(np.ones(n), size=2)
    b = b * a.sum() / b.sum()

    def bare():
        for Mi in M:
            emd_c(a, b, Mi, 100_000, 1)

    def pot():
        for Mi in M:
            ot.emd2(a, b, Mi)

    t_bare = median_time(bare, repeat)
    t_pot = median_time(pot, repeat)
    print(f"\nPer-problem overhead, k={k} n={n}, non-uniform, distances, serial:")
    print(f"  compiled solver alone        {t_bare / k * 1e6:7.1f} us")
    print(f"  ot.emd2 wrapper overhead     {(t_pot - t_bare) / k * 1e6:7.1f} us")
    for plans in (False, "sparse", True):
        t = median_time(lambda p=plans: emd_batch(M, a, b, return_plan=p), repeat)
        print(f"  skemd overhead, plans={plans!s:<6} {(t - t_bare) / k * 1e6:7.1f} us")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repeat per timing")
    args = parser.parse_args()
    repeat = 1 if args.quick else 3
    for uniform in (True, False):
        for plans in (True, False):
            run_case(1000, 100, uniform, plans, repeat=repeat)
    run_case(20000, 10, True, True, repeat=repeat)
    overhead_per_problem(repeat=repeat)


if __name__ == "__main__":
    main()
