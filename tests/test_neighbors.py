"""EMDNeighborsTransformer: exact neighbours, scikit-learn's graph contract.

The oracle is brute force: the full distance matrix (``pairwise_emd``, itself
equal to a double loop of ``ot.emd2``; checked again here on the distances
returned) sorted row by row, ties going to the smaller index. The graph is
compared with scikit-learn's own ``KNeighborsTransformer`` on that matrix.
scikit-learn's estimator checks run in ``test_pairwise.py``.
"""

import warnings

import numpy as np
import ot
import pytest
from sklearn.base import clone
from sklearn.cluster import DBSCAN, SpectralClustering
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.manifold import TSNE, Isomap
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier, KNeighborsTransformer
from sklearn.pipeline import make_pipeline

import skemd._pairwise
from skemd import EMDNeighborsTransformer, PairCacheWarning, pairwise_emd
from skemd._pair_cache import PairCache

GRID = np.indices((8, 8)).reshape(2, -1).T.astype(float)


def brute_force(D, k, exclude_self=False):
    """Each row's k nearest, ties by index, from the full matrix."""
    D = np.array(D, dtype=float)
    if exclude_self:
        np.fill_diagonal(D, np.inf)
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, order, axis=1), order


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:90] / X[:90].sum(axis=1, keepdims=True), y[:90]


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cityblock"])
def test_graph_equals_brute_force_on_digits(digits, metric):
    X, _ = digits
    neighbours = EMDNeighborsTransformer(n_neighbors=5, support=GRID, metric=metric)
    graph = neighbours.fit_transform(X)
    D = pairwise_emd(X, support=GRID, metric=metric, n_jobs=2)  # the brute force
    expected = KNeighborsTransformer(n_neighbors=5, metric="precomputed").fit_transform(
        D
    )
    np.testing.assert_array_equal(graph.indices, expected.indices)
    np.testing.assert_array_equal(graph.indptr, expected.indptr)
    np.testing.assert_allclose(graph.data, expected.data, rtol=1e-9, atol=1e-12)
    assert neighbours.n_pairs_solved_ < len(X) * (len(X) - 1) / 2  # it pruned
    # The distances are the EMD's, and each sample is its own first neighbour.
    i, j = 7, graph.indices[graph.indptr[7] + 3]
    cost = ot.dist(GRID, GRID, "sqeuclidean" if metric == "sqeuclidean" else metric)
    np.testing.assert_allclose(
        graph[i, j], ot.emd2(X[i], X[j], cost), rtol=1e-9, atol=1e-12
    )
    assert (graph.indices[graph.indptr[:-1]] == np.arange(len(X))).all()


def test_kneighbors_and_new_queries_equal_brute_force(digits):
    X, _ = digits
    fit, new = X[:60], X[60:]
    neighbours = EMDNeighborsTransformer(n_neighbors=4, support=GRID).fit(fit)
    dist, ind = neighbours.kneighbors()  # each sample excluded from its own
    expected = pairwise_emd(fit, support=GRID, n_jobs=2)
    expected = brute_force(expected, 4, exclude_self=True)
    np.testing.assert_array_equal(ind, expected[1])
    np.testing.assert_allclose(dist, expected[0], rtol=1e-9, atol=1e-12)
    dist, ind = neighbours.kneighbors(new, n_neighbors=3)
    expected = brute_force(pairwise_emd(new, fit, support=GRID, n_jobs=2), 3)
    np.testing.assert_array_equal(ind, expected[1])
    np.testing.assert_allclose(dist, expected[0], rtol=1e-9, atol=1e-12)
    assert neighbours.kneighbors(new, return_distance=False).shape == (30, 4)
    graph = neighbours.transform(new)
    assert graph.shape == (30, 60) and graph.nnz == 30 * 5


def test_ties_go_to_the_smaller_index(rng):
    base = rng.dirichlet(np.ones(16), size=6)
    X = base[[0, 1, 0, 2, 1, 3, 0, 4]]  # duplicates: exact ties at distance 0
    support = GRID[:16]
    graph = EMDNeighborsTransformer(n_neighbors=3, support=support).fit_transform(X)
    D = pairwise_emd(X, support=support)
    dist, ind = brute_force(D, 4)
    np.testing.assert_array_equal(graph.indices.reshape(-1, 4), ind)
    np.testing.assert_allclose(graph.data.reshape(-1, 4), dist, atol=1e-12)
    assert graph.indices[graph.indptr[2]] == 0  # its duplicate 0 comes first


@pytest.mark.parametrize("kind", ["clouds", "ragged", "ground_cost"])
def test_clouds_and_explicit_costs_equal_brute_force(rng, kind):
    weights = None
    if kind == "ground_cost":
        X = rng.dirichlet(np.ones(10), size=40)
        cost = rng.random((10, 10))
        params = {"ground_cost": cost}
        D = pairwise_emd(X, ground_cost=cost)
    else:
        centres = rng.normal(size=(40, 1, 2)) * 3
        if kind == "clouds":
            X = centres + rng.normal(size=(40, 6, 2))
        else:
            X = [c + rng.normal(size=(rng.integers(3, 8), 2)) for c in centres]
            weights = [rng.random(len(x)) + 0.1 for x in X]
        params = {"metric": "euclidean"}
        D = pairwise_emd(X, weights=weights, metric="euclidean")
    neighbours = EMDNeighborsTransformer(n_neighbors=3, **params)
    graph = neighbours.fit_transform(X, weights=weights)
    dist, ind = brute_force(D, 4)
    np.testing.assert_array_equal(graph.indices.reshape(-1, 4), ind)
    np.testing.assert_allclose(graph.data.reshape(-1, 4), dist, rtol=1e-9, atol=1e-12)


def test_other_methods_solve_every_pair(digits):
    X = digits[0][:15]
    params = {"method": "sinkhorn", "reg": 1.0, "support": GRID, "metric": "euclidean"}
    neighbours = EMDNeighborsTransformer(n_neighbors=3, **params)
    neighbours.fit_transform(X)
    assert neighbours.n_pairs_solved_ == 15 * 15
    dist, ind = neighbours.kneighbors()
    expected = brute_force(pairwise_emd(X, **params), 3, exclude_self=True)
    np.testing.assert_array_equal(ind, expected[1])
    np.testing.assert_allclose(dist, expected[0], rtol=1e-12)


def test_connectivity_mode_has_k_ones_per_row(digits):
    X = digits[0][:30]
    graph = EMDNeighborsTransformer(3, mode="connectivity", support=GRID).fit_transform(
        X
    )
    assert graph.nnz == 30 * 3 and (graph.data == 1).all()


def test_bad_n_neighbors_and_unfitted_calls(digits):
    X = digits[0][:6]
    neighbours = EMDNeighborsTransformer(n_neighbors=6, support=GRID).fit(X)
    with pytest.raises(ValueError, match="n_neighbors <= 6"):
        neighbours.transform(X)  # 6 + 1 entries per row in distance mode
    with pytest.raises(ValueError, match="n_neighbors <= 5"):
        neighbours.kneighbors()
    with pytest.raises(ValueError, match="mode"):
        EMDNeighborsTransformer(mode="weird").fit(X)
    unfitted = EMDNeighborsTransformer(n_neighbors=0)
    with pytest.raises(ValueError, match="n_neighbors"):
        unfitted.transform(X)  # parameters are validated before fitted-ness


def test_verbose_shows_a_bar_and_the_share_solved(digits, capfd):
    X = digits[0][:40]
    EMDNeighborsTransformer(3, support=GRID, verbose=1).fit_transform(X)
    err = capfd.readouterr().err
    assert "40/40" in err and "queries" in err
    assert "pairs solved exactly" in err


def test_the_graph_feeds_scikit_learn_estimators(digits):
    X, _ = digits
    graph = EMDNeighborsTransformer(n_neighbors=10, support=GRID).fit_transform(X)
    embedding = Isomap(n_neighbors=5, metric="precomputed").fit_transform(graph)
    assert embedding.shape == (90, 2) and np.isfinite(embedding).all()
    labels = DBSCAN(eps=0.5, min_samples=3, metric="precomputed").fit(graph).labels_
    assert labels.shape == (90,) and labels.max() >= 1  # it found clusters
    embedding = TSNE(
        metric="precomputed", perplexity=3, init="random", random_state=0, max_iter=250
    ).fit_transform(graph)
    assert embedding.shape == (90, 2) and np.isfinite(embedding).all()
    spectral = SpectralClustering(
        n_clusters=3, affinity="precomputed_nearest_neighbors", n_neighbors=5
    )
    assert len(set(spectral.fit_predict(graph))) == 3


@pytest.mark.slow
def test_a_neighbours_classifier_is_grid_searched_in_a_pipeline():
    X, y = load_digits(return_X_y=True)
    X, y = X[:180], y[:180]
    pipe = make_pipeline(
        EMDNeighborsTransformer(n_neighbors=5, support=GRID),
        KNeighborsClassifier(n_neighbors=3, metric="precomputed"),
    )
    search = GridSearchCV(
        pipe,
        {"emdneighborstransformer__metric": ["euclidean", "sqeuclidean"]},
        cv=3,
    )
    search.fit(X, y)
    assert search.best_score_ > 0.9  # EMD neighbours classify digits well
    expected = KNeighborsClassifier(n_neighbors=3, metric="precomputed")
    train, test = np.arange(120), np.arange(120, 180)
    metric = search.best_params_["emdneighborstransformer__metric"]
    D = pairwise_emd(X, support=GRID, metric=metric, n_jobs=2)
    expected.fit(D[np.ix_(train, train)], y[train])
    got = clone(search.best_estimator_).fit(X[train], y[train])
    np.testing.assert_array_equal(
        got.predict(X[test]), expected.predict(D[np.ix_(test, train)])
    )


def test_negative_ground_costs_are_not_pruned_as_if_nonnegative(rng):
    # EMDs below 0: a bound that started at 0 pruned true neighbours.
    X = np.array([[0, 1, 1], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 1.0]])
    costs = [np.array([[-4, -1, 4], [-1, 4, -1], [4, -1, 0.0]])]
    costs += [rng.normal(size=(5, 5)) for _ in range(5)]
    for cost in costs:
        H = X if len(cost) == 3 else rng.dirichlet(np.ones(5), size=12)
        neighbours = EMDNeighborsTransformer(n_neighbors=2, ground_cost=cost).fit(H)
        dist, ind = neighbours.kneighbors()
        expected = brute_force(pairwise_emd(H, ground_cost=cost), 2, exclude_self=True)
        np.testing.assert_array_equal(ind, expected[1])
        np.testing.assert_allclose(dist, expected[0], rtol=1e-9, atol=1e-12)


def test_a_search_warns_once_about_the_failed_pairs_of_every_round(digits, monkeypatch):
    # max_iter=20 stops many simplex solves early, in several rounds of the
    # pruned search: one warning names the first of them and counts them all.
    solve_pairs, rounds = skemd._pairwise.solve_pairs, []

    def recording(left, right, pairs, *args):
        result = solve_pairs(left, right, pairs, *args)
        rounds.append((len(pairs), pairs[~result.converged]))
        return result

    monkeypatch.setattr(skemd._pairwise, "solve_pairs", recording)
    neighbours = EMDNeighborsTransformer(n_neighbors=3, support=GRID, max_iter=20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        neighbours.fit_transform(digits[0][:40])
    assert sum(len(failed) > 0 for _, failed in rounds) > 1
    failed = np.concatenate([failed for _, failed in rounds])
    (warning,) = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert warning.filename == __file__  # the line above, not skemd's
    shown = ", ".join(f"({i}, {j})" for i, j in failed[:10].tolist())
    assert str(warning.message).startswith(
        f"{len(failed)} of {sum(n for n, _ in rounds)} pairs of samples did not "
        f"converge within max_iter=20 ({shown}, ...)."
    )


def test_a_search_warns_once_when_the_pair_cache_cannot_be_used(
    digits, tmp_path, monkeypatch
):
    def unusable(cache):
        raise OSError("disk I/O error")

    monkeypatch.setattr(PairCache, "_connect", unusable)
    X = digits[0][:30]
    neighbours = EMDNeighborsTransformer(n_neighbors=3, support=GRID, memory=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = neighbours.fit_transform(X)
    (warning,) = caught  # each lookup and store of each round failed
    assert warning.category is PairCacheWarning and warning.filename == __file__
    assert "could not be used (disk I/O error)" in str(warning.message)
    assert "more PairCacheWarning in this call." in str(warning.message)
    expected = EMDNeighborsTransformer(n_neighbors=3, support=GRID).fit_transform(X)
    np.testing.assert_array_equal(graph.toarray(), expected.toarray())
