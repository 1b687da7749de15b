"""Batched Sinkhorn equals POT's per-problem ot.sinkhorn2 / ot.sinkhorn."""

import warnings

import numpy as np
import ot
import pytest
from conftest import random_weights
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

import skemd._solvers._sinkhorn as sinkhorn
from skemd import BatchEMDTransformer, emd_batch


def pot_sinkhorn(M, a, b, reg, method="sinkhorn", plans=True, **kwargs):
    """POT's ot.sinkhorn2 of each problem, and (if ``plans``) its ot.sinkhorn plan.

    Each plan is a second solve: None when the test reads no plan.
    """
    values, found = [], []
    for i, Mi in enumerate(M):
        ai = a if a.ndim == 1 else a[i]
        bi = b if b.ndim == 1 else b[i]
        if plans:
            found.append(ot.sinkhorn(ai, bi, Mi, reg, method=method, **kwargs))
        values.append(ot.sinkhorn2(ai, bi, Mi, reg, method=method, **kwargs))
    return np.array(values), np.array(found) if plans else None


@pytest.mark.parametrize("reg", [0.5, 0.05])
@pytest.mark.parametrize("shape", [(6, 6), (7, 4), (1, 5)])
def test_matches_pot_sinkhorn(rng, reg, shape):
    k = 12
    M = rng.random((k, *shape))
    a = random_weights(rng, (k, shape[0]), zeros=1 if shape[0] > 1 else 0)
    b = random_weights(rng, shape[1])
    expected, plans = pot_sinkhorn(M, a, b, reg)
    res = emd_batch(
        M, a, b, method="sinkhorn", reg=reg, return_plan=True, n_jobs=2, batch_size=5
    )
    assert res.converged.all()
    np.testing.assert_allclose(res.distance, expected, rtol=1e-6)
    np.testing.assert_allclose(res.plan, plans, rtol=1e-6, atol=1e-12)


def test_small_reg_is_stabilised_where_plain_sinkhorn_fails(rng):
    # reg=1e-3 on costs of order 1, shifted by 5: exp(-M / reg) underflows to
    # 0, so POT's plain Sinkhorn fails. Neither solver converges to 1e-9 in
    # 300 iterations, but both run the same log-domain iterates from the same
    # start, so after 300 iterations they must agree.
    M = rng.random((4, 6, 6)) + 5
    w = np.full(6, 1 / 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = ot.sinkhorn2(w, w, M[0], 1e-3)
        expected, _ = pot_sinkhorn(
            M, w, w, 1e-3, method="sinkhorn_log", plans=False, numItermax=300
        )
    assert not np.isfinite(plain) or plain == 0
    with pytest.warns(ConvergenceWarning):
        res = emd_batch(M, method="sinkhorn", reg=1e-3, max_iter=300)
    assert np.isfinite(res.distance).all()
    np.testing.assert_allclose(res.distance, expected, rtol=1e-9)


def test_overflowing_plain_scalings_fall_back_to_log_domain(rng, monkeypatch):
    monkeypatch.setattr(sinkhorn, "PLAIN_MAX_RANGE", np.inf)  # force plain first
    M = rng.random((3, 6, 6)) * 3
    w = np.full(6, 1 / 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected, _ = pot_sinkhorn(
            M, w, w, 1e-3, method="sinkhorn_log", plans=False, numItermax=300
        )
        res = emd_batch(M, method="sinkhorn", reg=1e-3, max_iter=300)
    np.testing.assert_allclose(res.distance, expected, rtol=1e-9)


@pytest.fixture(scope="module")
def small_reg_case():
    """Costs, marginals, and POT's log-domain values and plans at reg=1e-3.

    One oracle for the four tests below, which only read it (the arrays are
    read-only): POT's 400 log-domain iterations per problem take seconds.
    """
    rng = np.random.default_rng(42)  # the rng fixture's seed
    # Cost range over reg is 2000: beyond plain scaling, into absorbed scaling.
    M = rng.random((5, 7, 6)) * 2
    a = random_weights(rng, (5, 7), zeros=2)
    b = random_weights(rng, (5, 6), zeros=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected, plans = pot_sinkhorn(
            M, a, b, 1e-3, method="sinkhorn_log", numItermax=400
        )
    case = M, a, b, expected, plans
    for array in case:
        array.setflags(write=False)
    return case


def _small_reg_batch(M, a, b):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return emd_batch(
            M, a, b, method="sinkhorn", reg=1e-3, max_iter=400, return_plan=True
        )


@pytest.mark.parametrize("absorb_at", [1e50, 10.0])
def test_absorbed_scaling_equals_pot_log_domain(small_reg_case, monkeypatch, absorb_at):
    # A low threshold absorbs at almost every iteration: same iterates still.
    monkeypatch.setattr(sinkhorn, "ABSORB_AT", absorb_at)
    M, a, b, expected, plans = small_reg_case
    res = _small_reg_batch(M, a, b)
    np.testing.assert_allclose(res.distance, expected, rtol=1e-9)
    np.testing.assert_allclose(res.plan, plans, rtol=1e-6, atol=1e-12)


def test_absorbed_scaling_does_not_take_a_logsumexp_per_iteration(
    small_reg_case, monkeypatch
):
    calls = []
    logsumexp = sinkhorn.logsumexp
    monkeypatch.setattr(
        sinkhorn,
        "logsumexp",
        lambda *args, **kw: calls.append(1) or logsumexp(*args, **kw),
    )
    M, a, b, expected, _ = small_reg_case
    res = _small_reg_batch(M, a, b)
    np.testing.assert_allclose(res.distance, expected, rtol=1e-9)
    assert len(calls) == 2  # the first, log-domain iteration only


def test_non_finite_absorbed_scalings_fall_back_to_log_domain(
    small_reg_case, monkeypatch
):
    kernel = sinkhorn._absorbed_kernel

    def poisoned(Mr, f, g):
        K = kernel(Mr, f, g)
        K[0, 3, 2] = np.inf  # the first problem's scalings stop being finite
        return K

    monkeypatch.setattr(sinkhorn, "_absorbed_kernel", poisoned)
    M, a, b, expected, _ = small_reg_case
    res = _small_reg_batch(M, a, b)
    np.testing.assert_allclose(res.distance, expected, rtol=1e-9)


def test_each_problem_stops_on_its_own(rng):
    # Scaling costs changes how fast Sinkhorn converges at a fixed reg.
    M = rng.random((6, 10, 10)) * np.array([0.1, 0.1, 1, 1, 3, 3])[:, None, None]
    a = random_weights(rng, (6, 10))
    b = random_weights(rng, 10)
    res = emd_batch(M, a, b, method="sinkhorn", reg=0.05, max_iter=5000)
    for i in range(6):
        value = ot.sinkhorn2(a[i], b, M[i], 0.05, numItermax=5000)
        np.testing.assert_allclose(res.distance[i], value, rtol=1e-6)
    assert res.converged.all()


def test_non_convergence_is_flagged(rng):
    M = rng.random((5, 10, 10))
    with pytest.warns(ConvergenceWarning, match="5 of 5 problems did not converge"):
        res = emd_batch(M, method="sinkhorn", reg=0.01, max_iter=3, return_plan=True)
    assert not res.converged.any()
    assert np.isfinite(res.distance).all()
    assert np.isfinite(res.plan).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "sinkhorn"}, r"needs reg \(the entropic regularisation, > 0\)"),
        ({"method": "sinkhorn", "reg": 0.0}, "reg"),
        ({"method": "sinkhorn", "reg": -1.0}, "reg"),
        ({"method": "sinkhorn", "reg": 0.1, "return_plan": "sparse"}, "dense"),
        ({"method": "wasserstein"}, "method"),
    ],
)
def test_bad_sinkhorn_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        emd_batch(np.ones((2, 3, 3)), **kwargs)


def test_transformer_validates_method_in_fit():
    with pytest.raises(ValueError, match="needs reg"):
        BatchEMDTransformer(method="sinkhorn").fit(np.ones((2, 3, 3)))


@pytest.mark.slow
def test_grid_search_over_method_and_reg(rng):
    k, n = 60, 6
    y = np.arange(k) % 2
    X = rng.random((k, n, n)) + 0.5 * y[:, None, None]
    pipe = make_pipeline(BatchEMDTransformer(n_jobs=2), LogisticRegression())
    grid = [
        {"batchemdtransformer__method": ["exact"]},
        {
            "batchemdtransformer__method": ["sinkhorn"],
            "batchemdtransformer__reg": [0.05, 0.1, 1.0],
        },
    ]
    search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_score_ > 0.9
    sinkhorn_feature = BatchEMDTransformer(method="sinkhorn", reg=0.1).fit_transform(X)
    np.testing.assert_allclose(
        sinkhorn_feature[:, 0],
        pot_sinkhorn(X, np.full(n, 1 / n), np.full(n, 1 / n), 0.1, plans=False)[0],
        rtol=1e-6,
    )


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(
    st.tuples(st.integers(1, 7), st.integers(1, 7)).flatmap(
        lambda shape: st.tuples(
            arrays(np.float64, (3, *shape), elements=st.floats(0, 3)),
            arrays(np.float64, (3, shape[0]), elements=st.floats(0, 1)),
            arrays(np.float64, (3, shape[1]), elements=st.floats(0, 1)),
        )
    ),
    st.sampled_from([1e-3, 3e-3, 3e-2]),
)
def test_property_matches_pot_log_domain_at_small_reg(problems, reg):
    # Small reg on costs up to 3 exercises all three update rules (plain,
    # absorbed, log-domain fallback), zero weights included.
    M, a, b = problems
    a, b = (
        a + (a.sum(axis=1, keepdims=True) == 0),
        b + (b.sum(axis=1, keepdims=True) == 0),
    )
    a, b = a / a.sum(axis=1, keepdims=True), b / b.sum(axis=1, keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected, _ = pot_sinkhorn(
            M, a, b, reg, method="sinkhorn_log", plans=False, numItermax=200
        )
        res = emd_batch(M, a, b, method="sinkhorn", reg=reg, max_iter=200)
    np.testing.assert_allclose(res.distance, expected, rtol=1e-8, atol=1e-12)
