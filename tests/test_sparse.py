"""Sparse plans: same plans as dense, a fraction of the bytes, no dense build."""

import tracemalloc

import joblib
import numpy as np
import pytest
from conftest import oracle, random_weights
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skemd import BatchEMDTransformer, emd_batch


def _nbytes(csr):
    return csr.data.nbytes + csr.indices.nbytes + csr.indptr.nbytes


@pytest.mark.parametrize("weights", ["uniform", "per_problem"])
def test_sparse_plans_equal_dense_plans(rng, weights):
    k, n, m = 30, 12, 12
    M = rng.random((k, n, m))
    a = None if weights == "uniform" else random_weights(rng, (k, n), zeros=3)
    dense = emd_batch(M, a, return_plan=True)
    res = emd_batch(M, a, return_plan="sparse", n_jobs=2, batch_size=7)
    assert isinstance(res.plan, sparse.csr_array)
    assert res.plan.shape == (k, n * m)
    np.testing.assert_array_equal(res.plan.toarray().reshape(k, n, m), dense.plan)
    np.testing.assert_array_equal(res.distance, dense.distance)
    np.testing.assert_allclose(res.distance, oracle(M, a)[0], rtol=1e-9)
    assert (np.diff(res.plan.indptr) <= n + m - 1).all()
    G3 = res.plan[[3]].toarray().reshape(n, m)
    np.testing.assert_allclose((G3 * M[3]).sum(), res.distance[3], rtol=1e-12)


@pytest.mark.slow  # loky's worker processes start in seconds
def test_sparse_plans_with_loky_are_identical(rng):
    M = rng.random((20, 9, 7))
    serial = emd_batch(M, return_plan="sparse")
    with joblib.parallel_config(backend="loky"):
        res = emd_batch(M, return_plan="sparse", n_jobs=2, batch_size=3)
    assert (res.plan != serial.plan).nnz == 0


def test_sparse_plans_are_under_5_percent_of_dense_bytes(rng):
    M = rng.random((200, 100, 100))
    a = random_weights(rng, 100)
    for weights in (None, a):
        plan = emd_batch(M, weights, return_plan="sparse").plan
        assert _nbytes(plan) <= 0.05 * M.nbytes


def test_sparse_mode_never_builds_dense_plans(rng):
    M = rng.random((300, 60, 60))  # dense plans would take 8.6 MB
    tracemalloc.start()
    emd_batch(M, random_weights(rng, 60), return_plan="sparse")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 0.2 * M.nbytes


def test_ragged_sparse_plans(rng):
    M = [rng.random((3, 5)), rng.random((6, 2))]
    res = emd_batch(M, return_plan="sparse")
    dense = emd_batch(M, return_plan=True)
    assert [G.shape for G in res.plan] == [(3, 5), (6, 2)]
    for G_sparse, G in zip(res.plan, dense.plan, strict=True):
        np.testing.assert_array_equal(G_sparse.toarray(), G)


def test_empty_batch_sparse():
    res = emd_batch(np.empty((0, 3, 4)), return_plan="sparse")
    assert res.plan.shape == (0, 12)


def test_transformer_sparse_output_in_pipeline(rng):
    k, n = 60, 8
    y = np.arange(k) % 2
    X = rng.random((k, n, n))
    X[y == 1] -= 2 * np.eye(n)  # class 1 plans concentrate on the diagonal
    a = random_weights(rng, n)
    emd = BatchEMDTransformer(output="plan", a=a, sparse_output=True)
    Xt = emd.fit_transform(X)
    assert sparse.issparse(Xt)
    assert Xt.shape == (k, n * n)
    np.testing.assert_array_equal(
        Xt.toarray(), BatchEMDTransformer(output="plan", a=a).fit_transform(X)
    )
    pipe = make_pipeline(emd, LogisticRegression()).fit(X, y)
    assert pipe.score(X, y) > 0.9
