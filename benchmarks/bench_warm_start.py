"""Do warm starts pay? POT's network simplex from dual potentials (issue #14.5).

POT 0.9.7's compiled ``emd_c(a, b, M, max_iter, 1, alpha_init, beta_init)``
builds its first spanning tree from the given potentials (Kruskal on the
4 (n + m) arcs of least ``|M_ij - alpha_i - beta_j|``, after a heap pass over
all n m arcs) and skips the cold start's heuristic initial pivots. This
script times cold against warm solves on sequences of related problems, in
turns in the same run (median of 7, single thread), and counts the simplex
pivots of each solve (the least ``max_iter`` at which it is optimal, minus
one; the cold start's initial pivots, at most one per target, are not
counted by POT and not here).

Sequences:

1. One query against many others, as in a pairwise path: ``load_digits``
   histograms over the 8x8 grid (Euclidean and squared Euclidean ground
   costs; every pair on all 64 bins, or restricted to the bins where either
   histogram has mass, as skemd solves pairs), point clouds with random
   positive weights, n = 30, 60, 100, each target an independent cloud, and
   a drifting cloud (each target the previous one moved a little, so that
   points correspond).
2. A batch of perturbations ``M0 * (1 + eps * U)`` of one cost matrix, n=100.

Warm starts come from the previous pair ("prev") or from the nearest
already-solved pair ("near": least L1 distance between the target
histograms; for the batch, the solution of ``M0``). Potentials of bins or
points the source solution does not have are filled in by the c-transform
(``beta_j = min_i M_ij - alpha_i``), and "-ct" variants keep only ``alpha``
and c-transform all of ``beta``. The preparation of the potentials is timed
with the warm solve. Every warm cost equals the cold cost to 1e-12 relative.

Run: ``python benchmarks/bench_warm_start.py``
"""

import time

import numpy as np
from ot.lp.emd_wrap import emd_c
from sklearn.datasets import load_digits

MAX_ITER = 100_000
REPEAT = 7
N_PAIRS = 100


def pivots(a, b, M, init):
    """Pivots the simplex makes: the least max_iter that reaches optimality, -1."""
    hi = 1
    while emd_c(a, b, M, hi, 1, *init)[4] != 1:
        hi *= 2
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if emd_c(a, b, M, mid, 1, *init)[4] == 1:
            hi = mid
        else:
            lo = mid
    return hi - 1


class Problem:
    """One EMD problem; ``rows`` and ``cols`` name its bins or points."""

    def __init__(self, a, b, M, rows, cols):
        self.a, self.b, self.M = a, b, np.ascontiguousarray(M)
        self.rows, self.cols = np.asarray(rows), np.asarray(cols)


def warm_init(problem, source, keep_beta):
    """Potentials for ``problem`` from the solution ``source`` of another one.

    ``source`` is ``(problem, alpha, beta)``. Potentials are carried over by
    name (bin or point); the others are filled in by the c-transform, which
    keeps them dual feasible.
    """
    if source is None:
        return (None, None)
    old, alpha_old, beta_old = source
    a, b, M = problem.a, problem.b, problem.M
    alpha = _carry(problem.rows, old.rows, alpha_old, old.a > 0)
    known_beta = (
        _carry(problem.cols, old.cols, beta_old, old.b > 0)
        if keep_beta
        else np.full(len(b), np.nan)
    )
    missing_beta = np.isnan(known_beta)
    if missing_beta.any():
        rows = (a > 0) & ~np.isnan(alpha)
        if not rows.any():
            return (None, None)
        ct = (M[rows][:, missing_beta] - alpha[rows, None]).min(axis=0)
        known_beta[missing_beta] = ct
    beta = known_beta
    missing = np.isnan(alpha)
    if missing.any():
        alpha[missing] = (M[missing] - beta).min(axis=1)
    return (alpha, beta)


def _carry(names, old_names, values, live):
    """``values`` of the live ``old_names`` at ``names``, NaN where absent."""
    table = np.full(max(names.max(), old_names.max()) + 1, np.nan)
    table[old_names[live]] = values[live]
    return table[names]


def run(problems, strategy, keep_beta, record=None):
    """Solve ``problems`` in order, warm-started by ``strategy``.

    ``strategy`` is None (cold), "prev", "own" (the problem's own optimal
    potentials, from a cold solve: the warm start's floor) or a function
    ``(j, solved) -> index`` of the solved problem to start from.
    ``record(j, init)`` sees each solve's starting potentials.
    """
    solved = []
    costs = np.empty(len(problems))
    for j, p in enumerate(problems):
        if strategy is None or (not solved and strategy != "own"):
            init = (None, None)
        elif strategy == "own":
            init = tuple(emd_c(p.a, p.b, p.M, MAX_ITER, 1)[2:4])
        else:
            src = len(solved) - 1 if strategy == "prev" else strategy(j, solved)
            init = warm_init(p, solved[src], keep_beta)
        _, costs[j], alpha, beta, code = emd_c(p.a, p.b, p.M, MAX_ITER, 1, *init)
        if code != 1:
            raise RuntimeError(f"problem {j} did not converge")
        solved.append((p, alpha, beta))
        if record is not None:
            record(j, init)
    return costs


def replay(problems, inits):
    """The solves alone, from starting potentials prepared beforehand."""
    for p, init in zip(problems, inits, strict=True):
        emd_c(p.a, p.b, p.M, MAX_ITER, 1, *init)


def compare(title, problems, variants):
    """Print cold against each warm variant: time per solve, pivots, identity.

    "solver" times the solves alone (potentials prepared beforehand), "with
    prep" the whole sequence, preparing each start from the last solutions
    ("own" has no such column: its potentials cost a cold solve).
    """
    variants = {"own": ("own", True), **variants}
    cold_costs = run(problems, None, False)
    cold_pivots = np.mean([pivots(p.a, p.b, p.M, (None, None)) for p in problems])
    no_init = [(None, None)] * len(problems)
    functions = {("cold", "solver"): lambda: replay(problems, no_init)}
    stats = {}
    for name, (strategy, keep_beta) in variants.items():
        inits = []
        warm_costs = run(
            problems, strategy, keep_beta, lambda j, i, inits=inits: inits.append(i)
        )
        rel = np.max(np.abs(warm_costs - cold_costs) / np.abs(cold_costs))
        if rel > 1e-12:
            raise AssertionError(f"{title} {name}: costs differ by {rel:.1e}")
        counts = [
            pivots(p.a, p.b, p.M, i) for p, i in zip(problems, inits, strict=True)
        ]
        stats[name] = (np.mean(counts), rel)
        functions[name, "solver"] = lambda inits=inits: replay(problems, inits)
        if strategy != "own":
            functions[name, "prep"] = lambda s=strategy, k=keep_beta: run(
                problems, s, k
            )
    times = {key: [] for key in functions}
    for fn in functions.values():
        fn()  # warm-up
    for _ in range(REPEAT):
        for key, fn in functions.items():
            start = time.perf_counter()
            fn()
            times[key].append((time.perf_counter() - start) / len(problems) * 1e6)
    cold = np.median(times["cold", "solver"])
    print(f"\n{title} ({len(problems)} solves; times in us per solve)")
    print(
        f"  {'start':<8} {'solver':>7} {'IQR':>11} {'vs cold':>8} {'with prep':>10} "
        f"{'vs cold':>8} {'pivots':>7} {'vs cold':>8} {'max rel diff':>13}"
    )

    def cells(key):
        if key not in times:
            return f"{'':>10} {'':>8}"
        t = np.median(times[key])
        if key[1] == "prep":
            return f"{t:>10.0f} {t / cold:>8.2f}"
        q1, q3 = np.percentile(times[key], [25, 75])
        return f"{t:>7.0f} {f'{q1:.0f}-{q3:.0f}':>11} {t / cold:>8.2f}"

    print(
        f"  {'cold':<8} {cells(('cold', 'solver'))} {'':>10} {'':>8} "
        f"{cold_pivots:>7.1f} {1:>8.2f} {0:>13.1e}"
    )
    for name, (mean_pivots, rel) in stats.items():
        print(
            f"  {name:<8} {cells((name, 'solver'))} {cells((name, 'prep'))} "
            f"{mean_pivots:>7.1f} {mean_pivots / cold_pivots:>8.2f} {rel:>13.1e}"
        )


def nearest_earlier(targets):
    """For each j > 0, the i < j whose target is nearest (L1) to target j's.

    Computed once, vectorised, outside the timed solves.
    """
    gaps = np.abs(targets[:, None] - targets[None]).sum(axis=-1)
    gaps[np.triu_indices(len(targets))] = np.inf
    return np.concatenate([[0], gaps[1:].argmin(axis=1)])


def digits_query(ground, restrict):
    X, _ = load_digits(return_X_y=True)
    H = X / X.sum(axis=1, keepdims=True)
    pixels = np.indices((8, 8)).reshape(2, -1).T.astype(float)
    C = ((pixels[:, None] - pixels[None]) ** 2).sum(-1)
    if ground == "euclidean":
        C = np.sqrt(C)
    query, problems = H[0], []
    for h in H[1 : N_PAIRS + 1]:
        bins = np.flatnonzero((query > 0) | (h > 0)) if restrict else np.arange(64)
        problems.append(
            Problem(query[bins], h[bins], C[np.ix_(bins, bins)], bins, bins)
        )
    return problems, nearest_earlier(H[1 : N_PAIRS + 1])


def clouds_query(n, drift):
    rng = np.random.default_rng(n)
    x = rng.random((n, 2))
    a = rng.random(n) + 0.1
    a /= a.sum()
    y, w = rng.random((n, 2)), rng.random(n) + 0.1
    problems = []
    for j in range(N_PAIRS):
        if drift:
            y = y + 0.02 * rng.standard_normal((n, 2))
            w = w * np.exp(0.05 * rng.standard_normal(n))
            cols = np.arange(n)  # the same points, moved
        else:
            y, w = rng.random((n, 2)), rng.random(n) + 0.1
            cols = j * n + np.arange(n)  # new points: nothing carries
        b = w / w.sum()
        problems.append(
            Problem(a, b, ((x[:, None] - y[None]) ** 2).sum(-1), range(n), cols)
        )
    return problems


def perturbed_batch(n, eps):
    rng = np.random.default_rng(1)
    x, y = rng.random((n, 2)), rng.random((n, 2))
    a, b = rng.random(n) + 0.1, rng.random(n) + 0.1
    a, b = a / a.sum(), b / b.sum()
    M0 = ((x[:, None] - y[None]) ** 2).sum(-1)
    problems = [Problem(a, b, M0, range(n), range(n))]
    for _ in range(N_PAIRS):
        M = M0 * (1 + eps * rng.random(M0.shape))
        problems.append(Problem(a, b, M, range(n), range(n)))
    return problems


def main():
    for ground in ("euclidean", "sqeuclidean"):
        for restrict in (False, True):
            problems, nearest = digits_query(ground, restrict)

            def near(j, solved, nearest=nearest):
                return nearest[j]

            support = "union of supports" if restrict else "all 64 bins"
            compare(
                f"digits, one query against the next {N_PAIRS}, {ground}, {support}",
                problems,
                {
                    "prev": ("prev", True),
                    "prev-ct": ("prev", False),
                    "near": (near, True),
                    "near-ct": (near, False),
                },
            )
    for n in (30, 60, 100):
        compare(
            f"clouds n={n}, one query against {N_PAIRS} independent clouds",
            clouds_query(n, drift=False),
            {"prev-ct": ("prev", False)},
        )
        compare(
            f"clouds n={n}, one query against a drifting cloud",
            clouds_query(n, drift=True),
            {"prev": ("prev", True), "prev-ct": ("prev", False)},
        )
    for eps in (1e-3, 1e-2, 1e-1):
        compare(
            f"batch: M0 * (1 + {eps:g} U), n=100, a and b fixed",
            perturbed_batch(100, eps),
            {
                "prev": ("prev", True),
                "near": (lambda j, solved: 0, True),
            },
        )


if __name__ == "__main__":
    main()
