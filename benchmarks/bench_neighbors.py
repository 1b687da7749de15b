"""Exact k-NN graph of the digits: pruned search against the full EMD matrix.

The 1,797 ``load_digits`` images as histograms of their pixel intensities
(normalised) over the 8x8 pixel grid, under a euclidean and a sqeuclidean
ground cost; the 10 nearest neighbours of every image, itself included (as
``KNeighborsTransformer`` has it on its training data):

- skemd's pruned search: ``EMDLowerBounds`` and ``knn_search``, its pairs
  solved by ``skemd._driver.solve_pairs`` with ``SolverOptions.build(n_jobs=2)``;
- the public estimator, ``EMDNeighborsTransformer(k - 1, n_jobs=2)
  .fit_transform`` (its graph has k entries per row, the image first);
- the baseline: the full matrix of ``PairwiseEMDTransformer(n_jobs=2)
  .fit_transform`` (the upper triangle), each row sorted, ties by index;
- POT's double loop of ``ot.emd2``, timed on 300 random pairs and scaled to
  the n (n - 1) / 2 pairs of the matrix.

They run in turns (search, matrix, ... ``--repeat`` times) and the neighbours
must be identical (exit code 1 otherwise). Also printed: the search's time
split (lower bounds and bookkeeping vs exact solves), the pairs solved, its
peak traced memory (a second search whose pairs are read from the matrix),
and the fraction of ordered pairs each bound alone leaves unpruned given the
true k-th distances (``cascade``: all bounds at once), and the least number
of pairs a search with these bounds must solve.

Run: ``python benchmarks/bench_neighbors.py [--n 600] [--metric euclidean]``
(the full 1,797 takes about 15 minutes per metric on 2 cores).
"""

import argparse
import time
import tracemalloc

import numpy as np
import ot
from sklearn.datasets import load_digits

from skemd import EMDNeighborsTransformer, PairwiseEMDTransformer
from skemd._bounds import EMDLowerBounds
from skemd._driver import solve_pairs
from skemd._ground import HistogramSpace, Samples
from skemd._knn import knn_search
from skemd._options import SolverOptions

N_JOBS = 2
GRID = np.indices((8, 8)).reshape(2, -1).T.astype(float)


def pruned_search(H, metric, k, solve=None):
    """The search, timed; ``solve`` defaults to the driver."""
    samples, space = Samples(H), HistogramSpace.from_support(GRID, metric)
    options = SolverOptions.build(n_jobs=N_JOBS)
    spent = {"solve": 0.0, "calls": 0}

    def driver(pairs):
        start = time.perf_counter()
        distance = solve_pairs(samples, samples, pairs, space, options).distance
        spent["solve"] += time.perf_counter() - start
        spent["calls"] += 1
        return distance

    start = time.perf_counter()
    bounds = EMDLowerBounds(samples, space, support=GRID, metric=metric).queries()
    distances, indices, n_solved = knn_search(
        bounds, solve or driver, k, symmetric=True
    )
    spent["total"] = time.perf_counter() - start
    return distances, indices, n_solved, spent, bounds


def estimator_graph(X, metric, k):
    transformer = EMDNeighborsTransformer(
        k - 1, support=GRID, metric=metric, n_jobs=N_JOBS
    )
    start = time.perf_counter()
    graph = transformer.fit_transform(X)
    return graph, time.perf_counter() - start


def pot_loop_scaled(H, metric, pairs, sample=300):
    """POT's ``ot.emd2`` loop over a random sample of pairs, scaled to ``pairs``."""
    rng = np.random.default_rng(0)
    cost = ot.dist(GRID, GRID, metric)
    i, j = rng.integers(len(H), size=(2, sample))
    start = time.perf_counter()
    for a, b in zip(i, j, strict=True):
        ot.emd2(H[a], H[b], cost)
    return (time.perf_counter() - start) * pairs / sample


def full_matrix(X, metric):
    transformer = PairwiseEMDTransformer(support=GRID, metric=metric, n_jobs=N_JOBS)
    start = time.perf_counter()
    D = transformer.fit_transform(X)
    return D, time.perf_counter() - start


def bound_fractions(bounds, kth):
    """Per bound, the fraction of ordered pairs i != j with bound <= kth[i].

    Also the least number of pairs a symmetric search with all the bounds
    must solve: those ``{i, j}`` that neither side's k-th distance rules out.
    """
    n = len(kth)
    left = dict.fromkeys([*bounds.names, "cascade"], 0)
    needed = []
    for start in range(0, n, 128):
        q, f = np.indices((min(128, n - start), n)).reshape(2, -1)
        q += start
        values = {name: bounds.bound(name, q, f) for name in bounds.names}
        values["cascade"] = np.maximum.reduce(list(values.values()))
        for name, value in values.items():
            left[name] += int(((value <= kth[q]) & (q != f)).sum())
        kept = (values["cascade"] <= kth[q]) & (q != f)
        needed.append(np.minimum(q, f)[kept] * n + np.maximum(q, f)[kept])
    least = len(np.unique(np.concatenate(needed)))
    return {name: count / (n * (n - 1)) for name, count in left.items()}, least


def peak_memory(H, metric, k, D):
    """Peak traced memory of a search whose pairs are read from ``D``."""
    tracemalloc.start()
    pruned_search(H, metric, k, solve=lambda pairs: D[pairs[:, 0], pairs[:, 1]])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def run(X, metric, k, repeat):
    n = len(X)
    H = X / X.sum(axis=1, keepdims=True)  # as the transformer normalises
    searches, graphs, matrices = [], [], []
    for _ in range(repeat):
        searches.append(pruned_search(H, metric, k))
        graphs.append(estimator_graph(X, metric, k))
        matrices.append(full_matrix(X, metric))
    D = matrices[-1][0]
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    identical = all(
        np.array_equal(indices, order)
        and np.array_equal(distances, np.take_along_axis(D, order, 1))
        for distances, indices, *_ in searches
    ) and all(
        np.array_equal(graph.indices.reshape(n, k), order)
        and np.allclose(graph.data.reshape(n, k), np.take_along_axis(D, order, 1))
        for graph, _ in graphs
    )
    graph_time = min(seconds for _, seconds in graphs)
    _, _, n_solved, spent, bounds = min(searches, key=lambda s: s[3]["total"])
    search_time = spent["total"]
    matrix_time = min(seconds for _, seconds in matrices)
    pairs = n * (n - 1) // 2
    kth = np.take_along_axis(D, order, 1)[:, -1]
    fractions, least = bound_fractions(bounds, kth)
    print(f"\n{n} digits, {metric} ground cost, {k}-NN graph (n_jobs={N_JOBS})")
    print(f"  full matrix ({pairs} pairs)        {matrix_time:9.1f} s")
    print(
        f"  pruned search                     {search_time:9.1f} s  "
        f"{matrix_time / search_time:5.1f}x faster"
    )
    print(
        f"  EMDNeighborsTransformer           {graph_time:9.1f} s  "
        f"{matrix_time / graph_time:5.1f}x faster"
    )
    pot = pot_loop_scaled(H, metric, pairs)
    print(
        f"  POT's ot.emd2 loop, scaled        {pot:9.1f} s  "
        f"(the search is {pot / search_time:5.1f}x faster)"
    )
    print(f"    bounds and bookkeeping          {search_time - spent['solve']:9.1f} s")
    print(
        f"    exact solves                    {spent['solve']:9.1f} s  "
        f"({n_solved} pairs in {spent['calls']} calls, "
        f"{n_solved / pairs:.2%} of the pairs; the bounds' least: {least})"
    )
    print(f"  identical neighbours and distances: {identical}")
    memory = peak_memory(H, metric, k, D) / 2**20
    print(
        f"  peak traced memory of the search: {memory:.1f} MiB "
        f"(the full matrix alone: {D.nbytes / 2**20:.1f} MiB)"
    )
    print("  ordered pairs each bound leaves (bound <= true k-th distance):")
    for name, fraction in fractions.items():
        evaluated = bounds.evaluated.get(name, "")
        evaluated = f"   computed for {evaluated} pair-stages" if evaluated else ""
        print(f"    {name:<16} {fraction:7.2%}{evaluated}")
    return identical


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1797, help="digits (a prefix)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--metric", nargs="+", default=["euclidean", "sqeuclidean"])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    X = load_digits().data[: args.n]
    ok = [run(X, metric, args.k, args.repeat) for metric in args.metric]
    if not all(ok):
        raise SystemExit("The pruned search differs from the full matrix.")


if __name__ == "__main__":
    main()
