"""method="partial" equals a loop of ot.partial.partial_wasserstein2."""

import numpy as np
import ot
import pytest
from conftest import random_weights
from scipy.optimize import linprog

from skemd import BatchEMDTransformer, emd_batch, iter_emd_batch
from skemd._cli import main


def pot_partial(M, a, b, mass):
    """The loop the batch must equal, with POT's mass for ``mass=None``."""
    values = []
    for Mi, ai, bi in zip(M, a, b, strict=True):
        m = min(ai.sum(), bi.sum()) if mass is None else mass
        values.append(ot.partial.partial_wasserstein2(ai, bi, Mi, m=m))
    return np.array(values)


def assert_partial_plans(plans, a, b, mass, distance, M):
    for G, ai, bi, d, Mi in zip(plans, a, b, distance, M, strict=True):
        m = min(ai.sum(), bi.sum()) if mass is None else mass
        assert (G >= 0).all()
        assert (G.sum(axis=1) <= ai + 1e-12).all()
        assert (G.sum(axis=0) <= bi + 1e-12).all()
        np.testing.assert_allclose(G.sum(), m, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose((G * Mi).sum(), d, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("mass", [None, 0.3, 0.0])
@pytest.mark.parametrize("weights", ["per_problem", "shared", "zeros"])
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_matches_pot_loop(rng, mass, weights, n_jobs):
    k, n, m = 40, 7, 5
    M = rng.random((k, n, m))
    a = rng.random((k, n)) + 0.1
    b = 2 * rng.random((k, m)) + 0.1
    if weights == "shared":
        a, b = a[0], b[0]
    elif weights == "zeros":
        a[:, :2] = 0.0
        b[:, -1] = 0.0
    res = emd_batch(
        M,
        a,
        b,
        method="partial",
        method_params={"mass": mass},
        return_plan=True,
        n_jobs=n_jobs,
    )
    A, B = np.broadcast_to(a, (k, n)), np.broadcast_to(b, (k, m))
    np.testing.assert_allclose(
        res.distance, pot_partial(M, A, B, mass), rtol=1e-9, atol=1e-15
    )
    assert res.converged.all()
    assert_partial_plans(res.plan, A, B, mass, res.distance, M)
    sparse = emd_batch(
        M, a, b, method="partial", method_params={"mass": mass}, return_plan="sparse"
    )
    np.testing.assert_array_equal(sparse.plan.toarray().reshape(k, n, m), res.plan)


def test_ragged_batch(rng):
    shapes = [(3, 4), (5, 2), (1, 6), (4, 4)]
    M = [rng.random(s) for s in shapes]
    a = [rng.random(n) for n, _ in shapes]
    b = [3 * rng.random(m) for _, m in shapes]
    res = emd_batch(M, a, b, method="partial", return_plan=True)
    np.testing.assert_allclose(res.distance, pot_partial(M, a, b, None), rtol=1e-9)
    assert_partial_plans(res.plan, a, b, None, res.distance, M)


def test_negative_costs_against_linprog(rng):
    # POT's augmentation assumes non-negative costs; the LP is the oracle.
    k, n, m, mass = 10, 4, 3, 0.4
    M = rng.normal(size=(k, n, m))
    a, b = rng.random((k, n)), rng.random((k, m)) + 0.2
    res = emd_batch(M, a, b, method="partial", method_params={"mass": mass})
    for i in range(k):
        rows = np.kron(np.eye(n), np.ones(m))
        cols = np.kron(np.ones(n), np.eye(m))
        lp = linprog(
            M[i].ravel(),
            A_ub=np.vstack([rows, cols]),
            b_ub=np.concatenate([a[i], b[i]]),
            A_eq=np.ones((1, n * m)),
            b_eq=[mass],
            method="highs",
        )
        np.testing.assert_allclose(res.distance[i], lp.fun, rtol=1e-9, atol=1e-12)


def test_equal_masses_and_full_mass_is_the_exact_emd(rng):
    M = rng.random((20, 5, 5))
    a = random_weights(rng, (20, 5))
    partial = emd_batch(M, a, method="partial").distance
    np.testing.assert_allclose(partial, emd_batch(M, a).distance, rtol=1e-12)


def test_too_much_mass_names_the_problem(rng, monkeypatch):
    import skemd._driver

    monkeypatch.setattr(skemd._driver, "solve_chunk", None)  # nothing is solved
    a = np.ones((3, 4))
    a[2] = 0.1
    with pytest.raises(ValueError, match=r"Problem 2: mass=0.5 exceeds"):
        emd_batch(
            rng.random((3, 4, 4)),
            a,
            np.ones(4),
            method="partial",
            method_params={"mass": 0.5},
        )


def test_unequal_masses_need_partial(rng):
    M, a, b = rng.random((2, 3, 3)), np.ones(3), np.full(3, 2.0)
    with pytest.raises(ValueError, match="different total masses"):
        emd_batch(M, a, b)
    assert emd_batch(M, a, b, method="partial").converged.all()


def test_bad_mass():
    with pytest.raises(ValueError, match="mass"):
        emd_batch(np.ones((1, 2, 2)), method="partial", method_params={"mass": -1})
    with pytest.raises(ValueError, match="no method takes"):
        emd_batch(np.ones((1, 2, 2)), method="partial", method_params={"masss": 1})


def test_streaming_and_transformer(rng):
    M, a, b = rng.random((30, 4, 3)), rng.random((30, 4)), rng.random((30, 3))
    options = {"method": "partial", "method_params": {"mass": 0.2}}
    expected = emd_batch(M, a, b, **options).distance
    streamed = np.concatenate(
        [r.distance for _, r in iter_emd_batch(M, a, b, batch_size=7, **options)]
    )
    np.testing.assert_array_equal(streamed, expected)
    features = BatchEMDTransformer(**options).fit_transform(M, a=a, b=b)
    np.testing.assert_array_equal(features[:, 0], expected)


def test_cli(tmp_path, rng):
    M, a, b = rng.random((12, 4, 3)), rng.random(4), rng.random(3)
    for name, value in (("M", M), ("a", a), ("b", b)):
        np.save(tmp_path / f"{name}.npy", value)
    out = tmp_path / "out.npz"
    args = ["solve", str(tmp_path / "M.npy"), "--a", str(tmp_path / "a.npy")]
    args += ["--b", str(tmp_path / "b.npy"), "-o", str(out), "--quiet"]
    assert main([*args, "--method", "partial", "--param", "mass=0.1"]) == 0
    expected = emd_batch(M, a, b, method="partial", method_params={"mass": 0.1})
    with np.load(out) as saved:
        np.testing.assert_array_equal(saved["distance"], expected.distance)


def test_too_much_mass_fails_at_every_entry_point_before_solving(rng, tmp_path, capsys):
    M, a = rng.random((3, 4, 4)), np.ones((3, 4))
    options = {"method": "partial", "method_params": {"mass": 5.0}}
    with pytest.raises(ValueError, match=r"Problem 0: mass=5\.0 exceeds"):
        iter_emd_batch(M, a, a, **options)  # raised by the call, not by next()
    with pytest.raises(ValueError, match=r"Problem 0: mass=5\.0 exceeds"):
        BatchEMDTransformer(**options).fit(M, a=a, b=a)
    np.save(tmp_path / "M.npy", M)
    np.save(tmp_path / "a.npy", a)
    out = tmp_path / "out.npz"
    argv = ["solve", str(tmp_path / "M.npy"), "--a", str(tmp_path / "a.npy")]
    argv += ["--b", str(tmp_path / "a.npy"), "-o", str(out), "--quiet"]
    assert main([*argv, "--method", "partial", "--param", "mass=5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mass=5 exceeds" in err[0]
    assert not out.exists() and not (tmp_path / "out.npz.partial").exists()
