"""method="unbalanced" equals a loop of ot.unbalanced.sinkhorn_unbalanced2.

Where POT's plain iteration fails (zero weights, small ``reg``), the oracles
are POT on the problem without its zero-weight bins, and a float64
log-domain run of POT's own iteration and stopping rule (``log_oracle``),
itself checked against POT where POT works. POT 0.9.7's
``method="sinkhorn_stabilized"`` is no oracle: at small ``reg`` its plans are
far from optimal (``test_pot_stabilized_is_no_oracle``).
"""

import warnings

import numpy as np
import ot
import pytest
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import logsumexp
from sklearn import __version__ as sklearn_version
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.fixes import parse_version

import skemd._solvers._sinkhorn as sinkhorn
import skemd._solvers._unbalanced as unbalanced
from skemd import BatchEMDTransformer, emd_batch, iter_emd_batch
from skemd._cli import main


def rows(w, k):
    return [np.asarray(w[i] if np.ndim(w[0]) else w, dtype=float) for i in range(k)]


def pot_unbalanced(M, a, b, reg, reg_m, **kwargs):
    """POT's values and plans, each problem solved without its zero-weight bins.

    POT's plain iteration stops at its first step on a zero weight
    (``test_pot_fails_on_zero_weights``); the plan of a zero weight's line is
    0, so the problem without those bins is the same problem.
    """
    values, plans = [], []
    for Mi, ai, bi in zip(M, rows(a, len(M)), rows(b, len(M)), strict=True):
        ka, kb = ai > 0, bi > 0
        plan = np.zeros(np.shape(Mi))
        plan[np.ix_(ka, kb)] = ot.unbalanced.sinkhorn_unbalanced(
            ai[ka], bi[kb], Mi[np.ix_(ka, kb)], reg, reg_m, **kwargs
        )
        values.append(
            ot.unbalanced.sinkhorn_unbalanced2(
                ai[ka], bi[kb], Mi[np.ix_(ka, kb)], reg, reg_m, **kwargs
            )
        )
        plans.append(plan)
    return np.array(values), plans


def _change(lx, lp):
    # POT's max|x - p| / max(max x, max p, 1), both scaled by the largest.
    top = max(lx.max(), lp.max(), 0.0)
    return np.abs(np.exp(lx - top) - np.exp(lp - top)).max()


def log_oracle(Mi, ai, bi, reg, reg_m, tol=1e-6, max_iter=1000):
    """POT's iteration and stopping rule on log-scalings, one problem.

    Returns the value ``<T, M>``, the plan and whether ``tol`` was met.
    """
    fi = reg_m / (reg_m + reg)
    with np.errstate(divide="ignore"):
        la, lb = np.log(ai), np.log(bi)
    Mr = -np.asarray(Mi, dtype=float) / reg
    lx, ly = np.where(ai > 0, 0.0, -np.inf), np.where(bi > 0, 0.0, -np.inf)
    converged = False
    for _ in range(max_iter):
        px, py = lx, ly
        lx = np.where(ai > 0, -fi * logsumexp(Mr + lb + ly, axis=1), -np.inf)
        ly = np.where(bi > 0, -fi * logsumexp(Mr + (la + lx)[:, None], axis=0), -np.inf)
        if 0.5 * (_change(lx, px) + _change(ly, py)) < tol:
            converged = True
            break
    plan = np.exp(Mr + (la + lx)[:, None] + (lb + ly)[None, :])
    return (plan * Mi).sum(), plan, converged


def solve(M, a, b, reg, reg_m, **kwargs):
    return emd_batch(
        M, a, b, method="unbalanced", reg=reg, method_params={"reg_m": reg_m}, **kwargs
    )


def problems(rng, k=30, n=7, m=5):
    """Costs in [0, 1]; weights of masses near 0.6*n and 1.2*m: unequal."""
    return rng.random((k, n, m)), rng.random((k, n)) + 0.1, 2 * rng.random((k, m))


@pytest.mark.parametrize("weights", ["per_problem", "shared", "zeros"])
def test_matches_pot_loop(rng, weights):
    k, n, m = 24, 7, 5
    M, a, b = problems(rng, k, n, m)
    b += 0.1
    if weights == "shared":
        a, b = a[0], b[0]
    elif weights == "zeros":
        a[:, :2] = 0.0
        b[:, -1] = 0.0
    expected, plans = pot_unbalanced(M, a, b, 0.1, 0.5)
    for n_jobs in (1, 2):
        res = solve(M, a, b, 0.1, 0.5, return_plan=True, n_jobs=n_jobs, batch_size=7)
        assert res.converged.all()
        np.testing.assert_allclose(res.distance, expected, rtol=1e-6)
        np.testing.assert_allclose(res.plan, plans, rtol=1e-6, atol=1e-12)
    if weights == "zeros":
        assert (res.plan[:, :2] == 0).all() and (res.plan[:, :, -1] == 0).all()
    # Unbalanced: the plan's marginals are neither a nor b.
    assert not np.allclose(res.plan.sum(axis=2), np.broadcast_to(a, (k, n)))
    assert not np.allclose(res.plan.sum(axis=1), np.broadcast_to(b, (k, m)))


def test_pot_fails_on_zero_weights(rng):
    M, a, b = problems(rng, k=1)
    a[0, 1] = 0.0
    numerical_errors = pytest.warns(
        UserWarning, match="Numerical errors at iteration 0"
    )
    with numerical_errors, np.errstate(invalid="ignore"):
        broken = ot.unbalanced.sinkhorn_unbalanced2(a[0], b[0], M[0], 0.1, 1.0)
    value = solve(M, a, b, 0.1, 1.0).distance[0]
    assert abs(broken / value - 1) > 0.1
    np.testing.assert_allclose(value, pot_unbalanced(M, a, b, 0.1, 1.0)[0], rtol=1e-6)


def test_pot_doc_example_and_unequal_masses():
    M, a = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([0.5, 0.5])
    res = solve(M[None], a, a, 1.0, 1.0, return_plan=True)
    np.testing.assert_allclose(
        res.plan[0], [[0.3220536, 0.1184769], [0.1184769, 0.3220536]], atol=1e-7
    )
    # Scaling b scales the plan's target side, no longer an error of masses.
    res = solve(M[None], a, 3 * a, 1.0, 1.0)
    expected = ot.unbalanced.sinkhorn_unbalanced2(a, 3 * a, M, 1.0, 1.0)
    np.testing.assert_allclose(res.distance[0], expected, rtol=1e-6)


def test_ragged_batch(rng):
    shapes = [(3, 4), (5, 2), (1, 6), (4, 4)]
    M = [rng.random(s) for s in shapes]
    a = [rng.random(n) + 0.1 for n, _ in shapes]
    b = [3 * rng.random(m) + 0.1 for _, m in shapes]
    res = solve(M, a, b, 0.05, 1.0, return_plan=True)
    expected, plans = pot_unbalanced(M, a, b, 0.05, 1.0)
    np.testing.assert_allclose(res.distance, expected, rtol=1e-6)
    for G, P in zip(res.plan, plans, strict=True):
        np.testing.assert_allclose(G, P, rtol=1e-6, atol=1e-12)


def test_log_oracle_equals_pot_where_pot_works(rng):
    M, a, b = problems(rng, k=4)
    for max_iter in (5, 1000):
        expected, plans = pot_unbalanced(M, a, b, 0.05, 0.5, numItermax=max_iter)
        for i in range(4):
            value, plan, _ = log_oracle(M[i], a[i], b[i], 0.05, 0.5, max_iter=max_iter)
            np.testing.assert_allclose(value, expected[i], rtol=1e-12)
            np.testing.assert_allclose(plan, plans[i], rtol=1e-10, atol=1e-15)


def _poison_absorbed(monkeypatch):
    kernel = sinkhorn._absorbed_kernel

    def poisoned(Mr, f, g):
        K = kernel(Mr, f, g)
        K[0, 0, 0] = np.inf  # the first problem's scalings stop being finite
        return K

    monkeypatch.setattr(sinkhorn, "_absorbed_kernel", poisoned)


@pytest.mark.parametrize("rule", ["plain", "absorbed", "absorbed often", "log"])
@pytest.mark.parametrize("max_iter", [7, 1000])
def test_every_update_rule_runs_pots_iterates(rng, monkeypatch, rule, max_iter):
    # Same values after 7 iterations as after convergence: same iterates.
    if rule != "plain":
        monkeypatch.setattr(unbalanced, "PLAIN_MAX_RANGE", -1.0)
    if rule == "absorbed often":
        monkeypatch.setattr(sinkhorn, "ABSORB_AT", 10.0)
    if rule == "log":
        _poison_absorbed(monkeypatch)
    M, a, b = problems(rng, k=4)
    a[:, 0] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = solve(M, a, b, 0.02, 0.2, max_iter=max_iter, return_plan=True)
    expected, plans = pot_unbalanced(M, a, b, 0.02, 0.2, numItermax=max_iter)
    assert res.converged.all() == (max_iter == 1000)
    np.testing.assert_allclose(res.distance, expected, rtol=1e-9)
    np.testing.assert_allclose(res.plan, plans, rtol=1e-8, atol=1e-14)


# |M| / reg up to 3000: exp(-M / reg) underflows, beyond plain scaling.
SMALL_REG, SMALL_REG_M = 1e-3, 0.01


def _small_reg_case(rng):
    M = 3 * rng.random((4, 6, 7))
    a = rng.random((4, 6)) + 0.05
    b = 2 * rng.random((4, 7)) + 0.05
    a[:, 1], b[:, 2] = 0.0, 0.0
    return M, a, b


@pytest.mark.parametrize("absorb_at", [1e50, 10.0])
def test_small_reg_is_stabilised_where_pot_fails(rng, monkeypatch, absorb_at):
    monkeypatch.setattr(sinkhorn, "ABSORB_AT", absorb_at)
    M, a, b = _small_reg_case(rng)
    reg, reg_m = SMALL_REG, SMALL_REG_M
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        pot, _ = pot_unbalanced(M, a, b, reg, reg_m)
    assert any("Numerical errors" in str(w.message) for w in record)
    res = solve(M, a, b, reg, reg_m, return_plan=True)
    assert res.converged.all()
    for i in range(len(M)):
        value, plan, converged = log_oracle(M[i], a[i], b[i], reg, reg_m)
        assert converged
        np.testing.assert_allclose(res.distance[i], value, rtol=1e-9)
        np.testing.assert_allclose(res.plan[i], plan, rtol=1e-7, atol=1e-14)
    assert np.max(np.abs(pot / res.distance - 1)) > 1e-3  # POT's plain is wrong


def test_overflowing_plain_scalings_fall_back(rng, monkeypatch):
    monkeypatch.setattr(unbalanced, "PLAIN_MAX_RANGE", np.inf)  # force plain first
    M, a, b = _small_reg_case(rng)
    res = solve(M, a, b, SMALL_REG, SMALL_REG_M)
    expected = [
        log_oracle(*p, SMALL_REG, SMALL_REG_M)[0] for p in zip(M, a, b, strict=True)
    ]
    np.testing.assert_allclose(res.distance, expected, rtol=1e-9)


def test_non_finite_absorbed_scalings_fall_back_to_log_domain(rng, monkeypatch):
    _poison_absorbed(monkeypatch)
    M, a, b = _small_reg_case(rng)
    res = solve(M, a, b, SMALL_REG, SMALL_REG_M)
    value = log_oracle(M[0], a[0], b[0], SMALL_REG, SMALL_REG_M)[0]
    np.testing.assert_allclose(res.distance[0], value, rtol=1e-9)


def test_pot_stabilized_is_no_oracle(rng):
    # POT's stabilized plans have a far larger objective than the log-domain
    # fixed point, which is skemd's.
    M, a, b = _small_reg_case(rng)
    M, a, b = M[0], a[0] + 0.05, b[0] + 0.05
    reg, reg_m = 3e-3, 0.1

    def objective(T):
        def kl(p, q):
            return np.sum(p * np.log(p / q) - p + q)

        T = np.maximum(T, 1e-300)
        marginals = kl(T.sum(1), a) + kl(T.sum(0), b)
        return (T * M).sum() + reg * kl(T, np.outer(a, b)) + reg_m * marginals

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stabilized = ot.unbalanced.sinkhorn_unbalanced(
            a, b, M, reg, reg_m, method="sinkhorn_stabilized"
        )
    ours = solve(M[None], a, b, reg, reg_m, return_plan=True).plan[0]
    assert objective(ours) < objective(stabilized) - 1e-3


def test_unconverged_problems_are_flagged(rng):
    M, a, b = problems(rng, k=5)
    with pytest.warns(ConvergenceWarning, match=r"5 of 5 .*reg_m / reg \(here 100\)"):
        res = solve(M, a, b, 0.01, 1.0, max_iter=3, return_plan=True)
    assert not res.converged.any()
    np.testing.assert_allclose(
        res.distance, pot_unbalanced(M, a, b, 0.01, 1.0, numItermax=3)[0], rtol=1e-9
    )
    assert np.isfinite(res.plan).all()


def test_a_result_that_never_became_finite_is_nan_and_unconverged(rng):
    M = 10 * rng.random((3, 4, 4))
    with pytest.warns(ConvergenceWarning, match="non-finite cost.*reg=1e-310 is"):
        res = solve(M, None, None, 1e-310, 1.0, max_iter=20)
    assert not res.converged.any()
    assert np.isnan(res.distance).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method_params": {"reg_m": 1.0}}, r"needs reg \(the entropic"),
        ({"reg": 0.1}, r"needs reg_m \(The marginal relaxation"),
        ({"reg": 0.1, "method_params": {"reg_m": 0.0}}, "reg_m"),
        ({"reg": 0.1, "method_params": {"reg_m": -1.0}}, "reg_m"),
        ({"reg": 0.1, "method_params": {"reg_m": np.inf}}, "reg_m"),
        ({"reg": 0.1, "method_params": {"reg_m": np.nan}}, "reg_m"),
        ({"reg": 0.1, "method_params": {"reg_m": "1"}}, "reg_m"),
        ({"reg": -0.1, "method_params": {"reg_m": 1.0}}, "reg"),
        ({"reg": 0.1, "tol": 0.0, "method_params": {"reg_m": 1.0}}, "tol"),
        (
            {"reg": 0.1, "method_params": {"reg_m": 1.0}, "return_plan": "sparse"},
            "dense plans",
        ),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        emd_batch(np.ones((2, 3, 3)), method="unbalanced", **kwargs)


def test_streaming_transformer_and_cli(rng, tmp_path):
    M, a, b = problems(rng, k=20)
    options = {"method": "unbalanced", "reg": 0.1, "method_params": {"reg_m": 0.5}}
    expected = emd_batch(M, a, b, **options).distance
    np.testing.assert_allclose(
        expected, pot_unbalanced(M, a, b, 0.1, 0.5)[0], rtol=1e-6
    )
    streamed = np.concatenate(
        [r.distance for _, r in iter_emd_batch(M, a, b, batch_size=6, **options)]
    )
    np.testing.assert_array_equal(streamed, expected)
    features = BatchEMDTransformer(a=a[0], b=b[0], **options).fit_transform(M)
    np.testing.assert_array_equal(
        features[:, 0], emd_batch(M, a[0], b[0], **options).distance
    )
    for name, value in (("M", M), ("a", a), ("b", b)):
        np.save(tmp_path / f"{name}.npy", value)
    out = tmp_path / "out.npz"
    args = ["solve", str(tmp_path / "M.npy"), "--a", str(tmp_path / "a.npy")]
    args += ["--b", str(tmp_path / "b.npy"), "-o", str(out), "--quiet"]
    args += ["--method", "unbalanced", "--reg", "0.1", "--param", "reg_m=0.5"]
    assert main(args) == 0
    with np.load(out) as saved:
        np.testing.assert_array_equal(saved["distance"], expected)


@pytest.mark.skipif(
    parse_version(sklearn_version) < parse_version("1.8"),
    reason="before scikit-learn 1.8, the default scorer routes no metadata to the "
    "test folds (scikit-learn #30937): they are transformed without b",
)
def test_grid_search_over_method_params(rng):
    # The label is the total mass of b, per-sample metadata routed by the CV.
    k, n = 48, 5
    y = np.arange(k) % 2
    M = rng.random((k, n, n))
    B = rng.dirichlet(np.ones(n), size=k) * (1.0 + y)[:, None]
    a = np.full(n, 0.2)
    with sklearn.config_context(enable_metadata_routing=True):
        emd = BatchEMDTransformer(method="unbalanced", reg=0.1, a=a)
        emd.set_fit_request(b=True).set_transform_request(b=True)
        pipe = make_pipeline(emd, StandardScaler(), LogisticRegression())
        grid = {
            "batchemdtransformer__method_params": [{"reg_m": 0.1}, {"reg_m": 1.0}],
            "batchemdtransformer__reg": [0.05, 0.1],
        }
        search = GridSearchCV(pipe, grid, cv=3).fit(M, y, b=B)
        best = search.best_estimator_[0]
        features = best.transform(M, b=B)[:, 0]
    assert len(search.cv_results_["params"]) == 4
    assert search.best_score_ > 0.9
    reg, reg_m = best.reg, best.method_params["reg_m"]
    np.testing.assert_allclose(
        features, pot_unbalanced(M, a, B, reg, reg_m)[0], rtol=1e-6
    )


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(
    st.tuples(st.integers(1, 6), st.integers(1, 6)).flatmap(
        lambda shape: st.tuples(
            arrays(np.float64, (3, *shape), elements=st.floats(0, 3)),
            arrays(np.float64, (3, shape[0]), elements=st.floats(0, 2)),
            arrays(np.float64, (3, shape[1]), elements=st.floats(0, 2)),
        )
    ),
    st.sampled_from([1e-3, 3e-2, 0.5]),
    st.sampled_from([0.01, 1.0, 10.0]),
)
def test_property_matches_the_log_domain_oracle(problems, reg, reg_m):
    # Costs up to 3 at small reg exercise every update rule; zero weights too.
    M, a, b = problems
    a = a + (a.sum(axis=1, keepdims=True) == 0)
    b = b + (b.sum(axis=1, keepdims=True) == 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = solve(M, a, b, reg, reg_m, max_iter=200)
    for i in range(3):
        value, _, converged = log_oracle(M[i], a[i], b[i], reg, reg_m, max_iter=200)
        np.testing.assert_allclose(res.distance[i], value, rtol=1e-8, atol=1e-12)
        assert res.converged[i] == converged
