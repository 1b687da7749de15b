"""The method registry drives every entry point; options are validated once."""

import ast
import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

import skemd
from skemd import BatchEMDTransformer, PairwiseEMDTransformer, emd_batch
from skemd._cli import build_parser
from skemd._options import SOLVER_CONSTRAINTS, SolverOptions
from skemd._solvers import METHODS, REQUIRED, SHARED_PARAMETERS, solve_chunk
from skemd._validation import check_batch

PACKAGE = Path(skemd.__file__).parent


def test_no_module_outside_the_solvers_names_a_method():
    # Only the registry and each method's own solver module may name a method
    # in code; the public signatures take their default from the registry.
    for path in PACKAGE.glob("*.py"):
        named = [
            f"{path.name}:{node.lineno}"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and node.value in METHODS
        ]
        assert named == [], named


def test_method_choices_come_from_the_registry():
    (method,) = SOLVER_CONSTRAINTS["method"]
    assert method.options == set(METHODS)
    parser = build_parser()
    solve = parser._subparsers._group_actions[0].choices["solve"]
    (action,) = [a for a in solve._actions if a.dest == "method"]
    assert list(action.choices) == list(METHODS)
    for public in (
        skemd.emd_batch,
        skemd.iter_emd_batch,
        BatchEMDTransformer,
        PairwiseEMDTransformer,
        skemd.pairwise_emd,
        skemd.EMDNeighborsTransformer,
    ):
        for name, spec in METHODS.items():
            assert f'- "{name}": {spec.summary.split()[0]}' in public.__doc__
        assert "%(solver_parameters)s" not in public.__doc__
        assert "%(verbose)s" not in public.__doc__


def test_options_resolve_defaults_from_the_registry():
    for name, spec in METHODS.items():
        required = [p for p, d in spec.parameters.items() if d.default is REQUIRED]
        shared = {p: 0.1 for p in required if p in SHARED_PARAMETERS}
        own = {p: 0.1 for p in required if p not in SHARED_PARAMETERS}
        options = SolverOptions.build(method=name, method_params=own, **shared)
        for parameter, described in spec.parameters.items():
            if parameter not in required:
                assert options[parameter] == described.default
    exact = SolverOptions.build(reg=0.1, tol=1.0)  # ignored by "exact"
    assert dict(exact.params) == {"max_iter": 100_000, "assignment_max_n": None}


def test_options_are_immutable_and_replaced_whole():
    options = SolverOptions.build(max_iter=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.method = "sinkhorn"
    changed = options.replace(max_iter=7)
    assert (options["max_iter"], changed["max_iter"]) == (5, 7)
    with pytest.raises(ValueError, match="has no parameter"):
        options.replace(reg=1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method_params": {"reg": 0.1}}, "as its own argument"),
        ({"method_params": {"bogus": 1}}, "no method takes"),
        ({"method_params": {"assignment_max_n": -1}}, "assignment_max_n"),
        ({"method": "bogus"}, "Unknown method"),
        ({"method": "sinkhorn", "reg": 0.1, "return_plan": "sparse"}, "dense plans"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SolverOptions.build(**kwargs)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"method": "bogus"}, "method"),
        ({"output": "kernel"}, "output"),
        ({"max_iter": 0}, "max_iter"),
        ({"batch_size": -3}, "batch_size"),
        ({"method_params": {"bogus": 1}}, "no method takes"),
    ],
)
def test_unfitted_transform_validates_parameters(params, match):
    X = np.random.default_rng(0).random((4, 3, 3))
    with pytest.raises(ValueError, match=match):
        BatchEMDTransformer(**params).transform(X)


def test_fitted_pairwise_transform_validates_parameters():
    X = np.random.default_rng(0).random((4, 3))
    est = PairwiseEMDTransformer().fit(X)
    est.set_params(max_iter=0)
    with pytest.raises(InvalidParameterError, match="max_iter"):
        est.transform(X)


def _unconverged():
    M = np.random.default_rng(0).random((3, 20, 20))
    return M, {"method": "sinkhorn", "reg": 1e-4, "max_iter": 2}


def test_warnings_point_at_the_users_line():
    M, options = _unconverged()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always", ConvergenceWarning)
        emd_batch(M, **options)
        BatchEMDTransformer(**options).fit_transform(M)
        BatchEMDTransformer(**options).set_output(transform="default").transform(M)
    assert [w.category for w in record] == [ConvergenceWarning] * 3
    assert [Path(w.filename) for w in record] == [Path(__file__)] * 3
    lines = [w.lineno for w in record]
    assert len(set(lines)) == 3  # one per call site: none merged


def test_sinkhorn_advice_blames_a_tiny_reg():
    M, options = _unconverged()
    with pytest.warns(ConvergenceWarning, match=r"reg=0.0001 is small against the"):
        emd_batch(M, **options)
    with pytest.warns(ConvergenceWarning, match=r"Increase max_iter, or tol"):
        emd_batch(M, method="sinkhorn", reg=10.0, max_iter=1, tol=1e-300)
    with pytest.warns(
        ConvergenceWarning, match=r"within max_iter=1 .*Increase max_iter"
    ):
        emd_batch(M, np.random.default_rng(1).dirichlet(np.ones(20), 3), max_iter=1)


def test_a_non_finite_cost_is_never_flagged_converged():
    with pytest.warns(ConvergenceWarning, match="overflow float64 in the solver"):
        res = emd_batch(np.full((2, 4, 4), 1e308))
    assert not np.isfinite(res.distance).any()
    assert not res.converged.any()


def test_weights_whose_sum_overflows_are_refused():
    with pytest.raises(ValueError, match="overflows float64"):
        emd_batch(np.ones((1, 3, 3)), [1e308] * 3, [1e308] * 3)


def test_a_sparse_sink_never_drops_a_dense_plan():
    options = SolverOptions.build(method="sinkhorn", reg=0.1, return_plan=True)
    sparse = dataclasses.replace(options, plan="sparse")  # past the check
    with pytest.raises(ValueError, match="cannot be stored as a sparse"):
        solve_chunk(check_batch(np.random.default_rng(0).random((2, 3, 4))), sparse)


def test_no_warning_when_all_converge():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emd_batch(np.random.default_rng(0).random((5, 4, 4)), method="partial")


def test_a_sinkhorn_result_that_never_became_finite_is_nan_and_blames_reg():
    M = 10 * np.random.default_rng(0).random((3, 4, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.warns(ConvergenceWarning, match="non-finite cost.*reg=1e-310 is"):
            res = emd_batch(M, method="sinkhorn", reg=1e-310, max_iter=20)
    assert not res.converged.any()
    assert np.isnan(res.distance).all()  # never uninitialised memory
