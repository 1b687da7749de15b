"""Bad input gets a ValueError naming the problem, before anything is solved."""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skemd import emd_batch


@pytest.fixture
def M(rng):
    return rng.random((50, 4, 3))


@pytest.mark.parametrize(
    ("where", "value", "match"),
    [
        ((17, 2, 1), np.nan, r"M\[17\] has a non-finite cost nan at position \(2, 1\)"),
        ((3, 0, 0), np.inf, r"M\[3\] has a non-finite cost inf at position \(0, 0\)"),
        ((49, 3, 2), -np.inf, r"M\[49\] has a non-finite cost -inf"),
    ],
)
def test_non_finite_cost(M, where, value, match):
    M[where] = value
    with pytest.raises(ValueError, match=match):
        emd_batch(M)


@pytest.mark.parametrize(
    ("value", "shown"), [(-0.5, "-0.5"), (np.nan, "nan"), (np.inf, "inf")]
)
def test_bad_per_problem_weight(M, value, shown):
    a = np.full((50, 4), 0.25)
    a[31, 2] = value
    with pytest.raises(
        ValueError, match=rf"a\[31\] \(problem 31\) .* weight {shown} at position 2"
    ):
        emd_batch(M, a)


def test_bad_shared_weight(M):
    with pytest.raises(
        ValueError, match=r"b has a negative or non-finite weight -1\.0 at position 0"
    ):
        emd_batch(M, b=[-1.0, 1.0, 1.0])


def test_mass_mismatch_names_problem(M):
    b = np.full((50, 3), 1 / 3)
    b[8] *= 1.01
    with pytest.raises(
        ValueError, match=r"Problem 8: a and b have different total masses"
    ):
        emd_batch(M, b=b)


def test_mass_within_tolerance_is_rescaled_like_pot(M):
    import ot

    a = np.full(4, 0.25)
    b = np.array([0.2, 0.3, 0.5]) * (1 + 5e-7)
    expected = [ot.emd2(a, b, Mi) for Mi in M]
    np.testing.assert_allclose(emd_batch(M, a, b).distance, expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("a", "match"),
    [
        (np.zeros(4), "a sums to 0"),
        (
            np.vstack(
                [np.full((5, 4), 0.25), np.zeros((1, 4)), np.full((44, 4), 0.25)]
            ),
            r"a\[5\] \(problem 5\) sums to 0",
        ),
    ],
)
def test_zero_mass(M, a, match):
    with pytest.raises(ValueError, match=match):
        emd_batch(M, a)


@pytest.mark.parametrize(
    ("M_shape", "a", "b", "match"),
    [
        ((4, 3), None, None, "3-D array .* ndim=2"),
        ((2, 4, 3, 1), None, None, "ndim=4"),
        ((5, 4, 3), np.ones(3) / 3, None, r"a must have shape \(4,\)"),
        (
            (5, 4, 3),
            None,
            np.ones((5, 4)) / 4,
            r"b must have shape \(3,\) .* or \(5, 3\)",
        ),
        ((5, 4, 3), np.ones((6, 4)) / 4, None, r"or \(5, 4\)"),
        ((5, 0, 3), None, None, "must not be empty"),
    ],
)
def test_shape_errors(M_shape, a, b, match):
    with pytest.raises(ValueError, match=match):
        emd_batch(np.ones(M_shape), a, b)


def test_ragged_errors(rng):
    M = [rng.random((2, 3)), rng.random((4, 5)), np.ones(3)]
    with pytest.raises(ValueError, match=r"M\[2\] must be a non-empty 2-D array"):
        emd_batch(M)
    M = [rng.random((2, 3)), rng.random((4, 5))]
    with pytest.raises(ValueError, match="sequence of 2 1-D weight vectors"):
        emd_batch(M, a=np.ones(2) / 2)
    with pytest.raises(ValueError, match=r"a\[1\] must have shape \(4,\)"):
        emd_batch(M, a=[np.ones(2) / 2, np.ones(3) / 3])
    M[1][2, 2] = np.nan
    with pytest.raises(ValueError, match=r"M\[1\] has a non-finite cost"):
        emd_batch(M)


def test_non_numeric_input():
    with pytest.raises(ValueError, match="must hold real numbers"):
        emd_batch(np.full((2, 2, 2), "x"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_iter": 0}, "max_iter"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": "big"}, "batch_size"),
        ({"return_plan": "yes"}, "return_plan"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        emd_batch(np.ones((2, 2, 2)), **kwargs)


def test_bad_last_slice_fails_before_solving(rng, monkeypatch):
    import skemd._driver

    solved = []
    monkeypatch.setattr(skemd._driver, "solve_chunk", lambda *a, **k: solved.append(1))
    M = rng.random((2000, 10, 10))
    M[-1, 5, 5] = np.nan
    with pytest.raises(ValueError, match=r"M\[1999\]"):
        emd_batch(M, n_jobs=2)
    assert solved == []


def test_no_assertion_error_reaches_the_user(M):
    cases = [
        (np.ones(4), np.ones(3), "different total masses"),
        (None, [0, 0, 0], "sums to 0"),
    ]
    for a, b, match in cases:
        with pytest.raises(ValueError, match=match):
            emd_batch(M, a, b)


@pytest.mark.parametrize("first", [True, False])
def test_a_ragged_member_is_named(first):
    bad = [[1.0, 2.0], [3.0]]
    M = [bad, np.zeros((2, 2))] if first else [np.zeros((2, 2)), bad]
    index = 0 if first else 1
    with pytest.raises(ValueError, match=rf"M\[{index}\] is not a rectangular 2-D"):
        emd_batch(M)


def test_an_impossible_result_fails_before_the_input_is_read(monkeypatch):
    import skemd._batch

    monkeypatch.setattr(skemd._batch, "check_batch", None)  # reading would crash
    huge = np.broadcast_to(np.ones((1, 1, 1)), (10**6, 1000, 1000))
    with pytest.raises(ValueError, match="more than this machine's memory"):
        emd_batch(huge, return_plan=True)


def test_costs_near_the_float_maximum_are_blamed_not_max_iter():
    w = np.array([0.1, 0.2, 0.3, 0.4])
    with pytest.warns(ConvergenceWarning, match="rescale the costs") as record:
        res = emd_batch(np.full((1, 4, 4), 1e308), w, w)
    assert "Increase max_iter" not in str(record[0].message)
    assert not res.converged.any()
