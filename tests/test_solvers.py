"""Every solver route equals the others and the ot.emd loop."""

import types

import numpy as np
import pytest
from conftest import oracle, random_weights

from skemd import emd_batch
from skemd._solvers import ROUTES, choose_assignment_max_n, solve_chunk
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


@pytest.mark.parametrize("case", ["uniform", "weighted", "ties", "zero_rows"])
def test_routes_agree_with_each_other_and_pot(rng, case):
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
    routes = ["simplex", "public"] + (["assignment"] if a is None else [])
    results = {r: solve_chunk(batch, plan="dense", route=r) for r in routes}
    auto = solve_chunk(batch, plan="dense")
    for route, res in results.items():
        np.testing.assert_allclose(res.distance, expected, rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(res.distance, auto.distance, rtol=1e-12, atol=1e-15)
        costs = (res.plan * M).sum(axis=(1, 2))
        np.testing.assert_allclose(
            costs, expected, rtol=1e-9, atol=1e-15, err_msg=route
        )
    if "assignment" in results:
        plan = results["assignment"].plan
        assert (plan.sum(axis=1) == 1 / n).all()
        assert (plan.sum(axis=2) == 1 / n).all()


def test_auto_route_picks_assignment_only_where_exact():
    u = np.full(4, 0.25)
    w = np.array([0.1, 0.2, 0.3, 0.4])
    assert assignment_eligible(None, None, 4, 4)
    assert not assignment_eligible(None, None, 4, 5)
    assert not assignment_eligible(
        None, None, ASSIGNMENT_MAX_N + 1, ASSIGNMENT_MAX_N + 1
    )
    assert assignment_eligible(u, u, 4, 4)
    assert not assignment_eligible(w, w, 4, 4)
    np.testing.assert_array_equal(
        assignment_eligible(np.stack([u, w]), np.stack([u, u]), 4, 4), [True, False]
    )


def test_auto_route_dispatch(monkeypatch, rng):
    calls = []
    for name in ("simplex", "assignment"):
        solve = ROUTES[name]
        monkeypatch.setitem(
            ROUTES, name, lambda *args, _s=solve, _n=name: calls.append(_n) or _s(*args)
        )
    import skemd._solvers as solvers

    monkeypatch.setattr(solvers, "solve_simplex", ROUTES["simplex"])
    monkeypatch.setattr(solvers, "solve_assignment", ROUTES["assignment"])
    a = np.stack([np.full(5, 0.2), random_weights(rng, 5)])
    solve_chunk(check_batch(rng.random((2, 5, 5)), a))
    assert calls == ["assignment", "simplex"]


def test_large_uniform_problems_use_the_faster_exact_solver(rng):
    n = ASSIGNMENT_MAX_N + 20
    M = rng.random((3, n, n))
    chosen = choose_assignment_max_n(check_batch(M))
    assert chosen in (ASSIGNMENT_MAX_N, n)
    res = emd_batch(M, return_plan=True)
    np.testing.assert_allclose(res.distance, oracle(M)[0], rtol=1e-9)
    for forced in (ASSIGNMENT_MAX_N, n):
        other = solve_chunk(check_batch(M), assignment_max_n=forced)
        np.testing.assert_allclose(other.distance, res.distance, rtol=1e-12)


@pytest.mark.parametrize(
    ("shape", "a"),
    [((2, 150, 151), None), ((2, 150, 150), "weighted"), ((2, 50, 50), None)],
)
def test_no_timing_probe_where_the_route_is_fixed(rng, shape, a, monkeypatch):
    import skemd._solvers as solvers

    monkeypatch.setattr(solvers, "solve_assignment", None)  # a probe would crash
    a = random_weights(rng, shape[1]) if a else None
    assert (
        choose_assignment_max_n(check_batch(rng.random(shape), a)) == ASSIGNMENT_MAX_N
    )
