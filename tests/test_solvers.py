"""The exact method's two solvers equal each other and the ot.emd loop."""

import time
import types

import numpy as np
import ot
import pytest
from conftest import force_public_emd, oracle, random_weights

from skemd import emd_batch
from skemd._options import SolverOptions
from skemd._solvers import _exact, _simplex, solve_chunk
from skemd._solvers._assignment import ASSIGNMENT_MAX_N, assignment_eligible
from skemd._solvers._simplex import find_lean_solver
from skemd._validation import check_batch


def test_lean_solver_detected_on_installed_pot():
    import ot.lp.emd_wrap

    assert find_lean_solver() is ot.lp.emd_wrap.emd_c


def test_unknown_emd_c_signature_falls_back_to_public_route():
    def emd_c(a, b, M, iterations, threads):  # a renamed parameter
        raise AssertionError("must not be called")

    assert find_lean_solver(types.SimpleNamespace(emd_c=emd_c)) is None
    assert find_lean_solver(types.SimpleNamespace(emd_c=len)) is None  # no signature
    assert find_lean_solver(types.SimpleNamespace()) is None


def test_public_route_is_used_when_forced(rng, monkeypatch):
    calls = []
    public = ot.emd
    monkeypatch.setattr(ot, "emd", lambda *a, **k: calls.append(1) or public(*a, **k))
    a = random_weights(rng, (3, 4))
    emd_batch(rng.random((3, 4, 4)), a)
    assert calls == ([1, 1, 1] if _simplex.USES_PUBLIC else [])  # the lean route
    calls.clear()
    force_public_emd(monkeypatch)
    emd_batch(rng.random((3, 4, 4)), a)
    assert calls == [1, 1, 1]


def _solve(batch, max_n, public=False, monkeypatch=None):
    if public:
        force_public_emd(monkeypatch)
    options = SolverOptions.build(
        method_params={"assignment_max_n": max_n}, return_plan=True
    )
    return solve_chunk(batch, options)


@pytest.mark.parametrize("case", ["uniform", "weighted", "ties", "zero_rows"])
def test_routes_agree_with_each_other_and_pot(rng, case, monkeypatch):
    k, n = 15, 12
    M = rng.random((k, n, n))
    a = b = None
    if case == "weighted":
        a, b = random_weights(rng, (k, n), zeros=3), random_weights(rng, n)
    elif case == "ties":
        M = rng.integers(0, 3, (k, n, n)).astype(float)
        M[0] = 1.0
    elif case == "zero_rows":
        M[:, :4] = 0.0
    batch = check_batch(M, a, b)
    expected, _ = oracle(M, a, b)
    results = {
        "assignment": _solve(batch, n),
        "simplex": _solve(batch, 0),
        "public": _solve(batch, 0, public=True, monkeypatch=monkeypatch),
    }
    for route, res in results.items():
        np.testing.assert_allclose(res.distance, expected, rtol=1e-9, atol=1e-15)
        costs = (res.plan * M).sum(axis=(1, 2))
        np.testing.assert_allclose(
            costs, expected, rtol=1e-9, atol=1e-15, err_msg=route
        )
    if a is None:
        plan = results["assignment"].plan
        assert (plan.sum(axis=1) == 1 / n).all()
        assert (plan.sum(axis=2) == 1 / n).all()


def test_assignment_only_where_exact():
    u = np.full((1, 4), 0.25)
    w = np.array([[0.1, 0.2, 0.3, 0.4]])
    assert assignment_eligible(u, u).all()
    assert not assignment_eligible(u, np.full((1, 5), 0.2)).any()
    big = np.full((1, ASSIGNMENT_MAX_N + 1), 1 / (ASSIGNMENT_MAX_N + 1))
    assert not assignment_eligible(big, big).any()
    assert not assignment_eligible(w, w).any()
    np.testing.assert_array_equal(
        assignment_eligible(np.vstack([u, w]), np.vstack([u, u])), [True, False]
    )


def test_each_problem_goes_to_its_solver(monkeypatch, rng):
    calls = []
    for name in ("solve_simplex", "solve_assignment"):
        solve = getattr(_exact, name)
        monkeypatch.setattr(
            _exact, name, lambda *a, _s=solve, _n=name: calls.append(_n) or _s(*a)
        )
    a = np.stack([np.full(5, 0.2), random_weights(rng, 5)])
    res = emd_batch(rng.random((2, 5, 5)), a)
    assert calls == ["solve_assignment", "solve_simplex"]
    assert res.converged.all()


@pytest.mark.parametrize("assignment_faster", [True, False])
def test_large_uniform_problems_use_the_faster_exact_solver(
    rng, monkeypatch, assignment_faster
):
    n = ASSIGNMENT_MAX_N + 20
    M = rng.random((3, n, n))
    slow = "solve_simplex" if assignment_faster else "solve_assignment"
    solve = getattr(_exact, slow)

    def slowed(*args):
        time.sleep(0.05)
        return solve(*args)

    monkeypatch.setattr(_exact, slow, slowed)
    options = _exact.prepare(check_batch(M), SolverOptions.build())
    assert options["assignment_max_n"] == (n if assignment_faster else ASSIGNMENT_MAX_N)


def test_both_exact_solvers_agree_on_large_problems(rng):
    n = ASSIGNMENT_MAX_N + 20
    M = rng.random((3, n, n))
    expected = oracle(M)[0]
    for max_n in (None, ASSIGNMENT_MAX_N, n):
        res = emd_batch(M, method_params={"assignment_max_n": max_n})
        np.testing.assert_allclose(res.distance, expected, rtol=1e-9)


@pytest.mark.parametrize(
    ("shape", "a"),
    [((2, 150, 151), None), ((2, 150, 150), "weighted"), ((2, 50, 50), None)],
)
def test_no_timing_probe_where_the_route_is_fixed(rng, shape, a, monkeypatch):
    monkeypatch.setattr(_exact, "solve_assignment", None)  # a probe would crash
    monkeypatch.setattr(_exact, "solve_simplex", None)
    a = random_weights(rng, shape[1]) if a else None
    options = _exact.prepare(check_batch(rng.random(shape), a), SolverOptions.build())
    assert options["assignment_max_n"] == ASSIGNMENT_MAX_N


def test_explicit_assignment_max_n_is_kept_without_probe(rng, monkeypatch):
    monkeypatch.setattr(_exact, "solve_assignment", None)
    options = SolverOptions.build(method_params={"assignment_max_n": 7})
    assert _exact.prepare(check_batch(rng.random((2, 150, 150))), options) is options


def test_lean_and_public_simplex_agree_on_negative_costs(rng):
    for _ in range(20):
        n, m = rng.integers(1, 7, 2)
        M = rng.normal(size=(n, m)) * 10
        a, b = random_weights(rng, n), random_weights(rng, m)
        lean = _simplex.on_nonnegative_costs(_simplex.solve_lean)(a, b, M, 10**5)
        public = _simplex.on_nonnegative_costs(_simplex.solve_public)(a, b, M, 10**5)
        assert lean[2] and public[2]
        np.testing.assert_allclose(lean[1], public[1], rtol=1e-12, atol=1e-12)
