"""Oracle tests: emd_batch must equal a loop of ot.emd / ot.emd2."""

import joblib
import numpy as np
import pytest
from conftest import assert_optimal_plans, force_public_emd, oracle, random_weights
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.exceptions import ConvergenceWarning

from skemd import EMDResult, emd_batch

SHAPES = [(1, 1), (1, 6), (6, 1), (5, 5), (7, 4), (3, 9), (20, 20)]


@pytest.mark.parametrize(("n", "m"), SHAPES)
@pytest.mark.parametrize("weights", ["uniform", "shared", "per_problem", "zeros"])
def test_matches_ot_loop(rng, n, m, weights):
    k = 25
    M = rng.random((k, n, m))
    a = b = None
    if weights == "shared":
        a, b = random_weights(rng, n), random_weights(rng, m)
    elif weights == "per_problem":
        a, b = random_weights(rng, (k, n)), random_weights(rng, (k, m))
    elif weights == "zeros":
        a = random_weights(rng, (k, n), zeros=n // 2)
        b = random_weights(rng, m, zeros=m // 2)
    expected, _ = oracle(M, a, b)
    res = emd_batch(M, a, b, return_plan=True, batch_size=7)
    np.testing.assert_allclose(res.distance, expected, rtol=1e-9, atol=1e-15)
    assert res.converged.all()
    assert res.plan.shape == (k, n, m)
    assert_optimal_plans(res.plan, M, a, b, res.distance)


# loky's worker processes start in seconds: slow, as in test_progress.py.
@pytest.mark.parametrize(
    "backend", ["threading", pytest.param("loky", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_backends_and_n_jobs_give_identical_results(rng, backend, n_jobs):
    M = rng.random((60, 12, 9))
    a = random_weights(rng, (60, 12), zeros=2)
    serial = emd_batch(M, a, return_plan=True)
    with joblib.parallel_config(backend=backend):
        res = emd_batch(M, a, return_plan=True, n_jobs=n_jobs, batch_size=8)
    np.testing.assert_array_equal(res.distance, serial.distance)
    np.testing.assert_array_equal(res.plan, serial.plan)
    np.testing.assert_allclose(res.distance, oracle(M, a)[0], rtol=1e-9)


def test_uniform_square_uses_exact_assignment_and_matches_loop(rng):
    M = rng.random((40, 30, 30))
    res = emd_batch(M, return_plan=True, n_jobs=2)
    np.testing.assert_allclose(res.distance, oracle(M)[0], rtol=1e-9)
    # An assignment plan is a scaled permutation: it meets the marginals exactly.
    assert (res.plan.sum(axis=1) == 1 / 30).all()
    assert (res.plan.sum(axis=2) == 1 / 30).all()


def test_float32_int_and_non_contiguous_inputs(rng):
    M = rng.random((10, 6, 8)).astype(np.float32)
    a = random_weights(rng, 6).astype(np.float32)
    b = random_weights(rng, 8).astype(np.float32)
    np.testing.assert_allclose(
        emd_batch(M, a, b).distance, oracle(M, a, b)[0], rtol=1e-9
    )
    M_int = rng.integers(0, 10, (10, 5, 5))
    np.testing.assert_allclose(emd_batch(M_int).distance, oracle(M_int)[0], rtol=1e-9)
    M_t = rng.random((8, 7, 10)).transpose(2, 0, 1)  # (10, 8, 7), not C-contiguous
    assert not M_t.flags.c_contiguous
    np.testing.assert_allclose(emd_batch(M_t).distance, oracle(M_t)[0], rtol=1e-9)


def _read_only_costs(rng, tmp_path):
    path = tmp_path / "costs.npy"
    np.save(path, rng.random((30, 5, 7)))
    return np.load(path, mmap_mode="r")


def test_read_only_memmap_input(rng, tmp_path):
    M = _read_only_costs(rng, tmp_path)
    res = emd_batch(M, n_jobs=2, batch_size=4)
    np.testing.assert_allclose(res.distance, oracle(np.asarray(M))[0], rtol=1e-9)


@pytest.mark.slow  # loky's worker processes start in seconds
def test_read_only_memmap_input_on_loky(rng, tmp_path):
    M = _read_only_costs(rng, tmp_path)
    res = emd_batch(M, n_jobs=2, batch_size=4)
    with joblib.parallel_config(backend="loky"):
        res_loky = emd_batch(M, n_jobs=2, batch_size=4)
    np.testing.assert_array_equal(res_loky.distance, res.distance)


def test_ragged_batch(rng):
    shapes = [(3, 4), (5, 5), (1, 7), (6, 2)]
    M = [rng.random(s) for s in shapes]
    a = [random_weights(rng, n, zeros=1 if n > 1 else 0) for n, _ in shapes]
    b = [random_weights(rng, m) for _, m in shapes]
    res = emd_batch(M, a, b, return_plan=True, n_jobs=2, batch_size=1)
    np.testing.assert_allclose(res.distance, oracle(M, a, b)[0], rtol=1e-9)
    assert isinstance(res.plan, list)
    assert [G.shape for G in res.plan] == shapes
    assert_optimal_plans(res.plan, M, a, b, res.distance)
    uniform = emd_batch(M, return_plan=True)
    np.testing.assert_allclose(uniform.distance, oracle(M)[0], rtol=1e-9)


def test_list_of_equal_shapes_is_a_dense_batch(rng):
    M = [rng.random((4, 3)) for _ in range(5)]
    res = emd_batch(M, return_plan=True)
    assert res.plan.shape == (5, 4, 3)


@pytest.mark.parametrize("return_plan", [False, True])
def test_empty_batch(return_plan):
    res = emd_batch(np.empty((0, 4, 3)), return_plan=return_plan)
    assert res.distance.shape == (0,)
    assert res.converged.shape == (0,)
    assert (res.plan is None) != return_plan
    if return_plan:
        assert res.plan.shape == (0, 4, 3)


def test_non_convergence_is_flagged_and_warned_once(rng):
    # A 1x1 problem needs no pivot; the 30x31 ones need far more than two.
    M = [rng.random((30, 31)) for _ in range(12)]
    M[3] = np.ones((1, 1))
    with pytest.warns(ConvergenceWarning) as record:
        res = emd_batch(M, max_iter=2, n_jobs=2, batch_size=2)
    (warning,) = [w for w in record if w.category is ConvergenceWarning]
    message = str(warning.message)
    assert "11 of 12 problems did not converge within max_iter=2" in message
    assert "(indices 0, 1, 2, 4, 5, 6, 7, 8, 9, 10, ...)" in message
    np.testing.assert_array_equal(res.converged, np.arange(12) == 3)
    assert res.distance[3] == 1.0
    assert np.isfinite(res.distance).all()


def test_result_is_a_frozen_dataclass(rng):
    res = emd_batch(rng.random((2, 3, 3)))
    assert isinstance(res, EMDResult)
    with pytest.raises(AttributeError):
        res.distance = None


def test_degenerate_costs(rng):
    M = np.zeros((3, 6, 6))
    M[1] = 1.0
    M[2, 0] = 5.0  # one expensive row
    expected, _ = oracle(M)
    np.testing.assert_allclose(emd_batch(M).distance, expected, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("public", [False, True])
def test_negative_costs_where_pot_reports_infeasible(public, monkeypatch):
    if public:
        force_public_emd(monkeypatch)
    M = np.full((2, 2, 3), -2.0)
    M[1, 0, 0] = -3.0
    # POT 0.9.7's own solver reports M[0] infeasible and answers 0.0; the
    # optimum is -2 (any feasible plan costs -2).
    res = emd_batch(M, return_plan=True)
    np.testing.assert_allclose(res.distance, [-2.0, -1.0 - 4 / 3])
    assert res.converged.all()
    np.testing.assert_allclose(res.plan.sum(axis=2), 1 / 2)
    np.testing.assert_allclose(res.plan.sum(axis=1), 1 / 3)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda n: st.tuples(
            arrays(np.float64, (3, n, 4), elements=st.floats(-10, 10)),
            arrays(np.float64, n, elements=st.floats(0, 5)),
        )
    ),
    st.booleans(),
)
def test_property_matches_ot_loop(costs_and_weights, uniform):
    M, a = costs_and_weights
    a = None if a.sum() == 0 or uniform else a / a.sum()
    res = emd_batch(M, a, return_plan=True)
    np.testing.assert_allclose(res.distance, oracle(M, a)[0], rtol=1e-9, atol=1e-12)
    assert_optimal_plans(res.plan, M, a, None, res.distance)
