"""The method registry: every method skemd solves, described once.

To add a method, write its solver module in this package and add one
:class:`Method` to :data:`METHODS`. Everything else reads this table: the
``method`` choices and parameter checks of the public functions and
estimators, their documentation, the command line, the equal-mass check,
the plan formats, the engine's chunk sizing and the pairwise closed forms.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real

from sklearn.utils._param_validation import Interval

from . import _exact, _partial, _sinkhorn, _unbalanced


class _Required:
    def __repr__(self):
        return "required"


#: The default of a parameter that has none: the user must give it.
REQUIRED = _Required()


@dataclass(frozen=True)
class Parameter:
    """A parameter of a method.

    Attributes
    ----------
    constraints : list
        scikit-learn parameter constraints of a given value.
    default : object
        The value used when none is given, or :data:`REQUIRED`.
    doc : str
        What it means for this method, for the documentation.
    """

    constraints: list
    default: object
    doc: str


@dataclass(frozen=True)
class SharedParameter:
    """A parameter that several methods read, taken as its own argument.

    Attributes
    ----------
    constraints : list
        scikit-learn parameter constraints of a given value.
    type : str
        Its type, for the documentation.
    doc : str
        What it means, for the documentation.
    """

    constraints: list
    type: str
    doc: str


#: The parameters that every public function and estimator takes as its own
#: arguments (default None: the method's default); the other parameters of a
#: method are passed in ``method_params``.
SHARED_PARAMETERS = {
    "reg": SharedParameter(
        [Interval(Real, 0, None, closed="neither")], "float", "Regularisation strength."
    ),
    "tol": SharedParameter(
        [Interval(Real, 0, None, closed="neither")], "float", "Stopping tolerance."
    ),
    "max_iter": SharedParameter(
        [Interval(Integral, 1, None, closed="left")],
        "int",
        "Iteration limit per problem; a problem that reaches it is flagged in "
        "``converged`` and keeps the last plan found.",
    ),
}


def shared(name, default, doc):
    """A shared parameter (:data:`SHARED_PARAMETERS`) with a method's default."""
    return Parameter(SHARED_PARAMETERS[name].constraints, default, doc)


def _no_check(batch, options):
    pass


def _unchanged(batch, options):
    return options


def _increase_max_iter(options, costs):
    return "Increase max_iter."


@dataclass(frozen=True)
class Method:
    """Everything skemd needs to know about a method.

    Attributes
    ----------
    name : str
        The value of ``method=``.
    summary : str
        One sentence for the documentation and ``--help``.
    solve : callable
        ``solve(M, A, B, plans, options) -> (cost, converged)`` solves the
        problems of a chunk: float64 costs ``M`` (c, n, m), marginal rows
        ``A`` (c, n) and ``B`` (c, m), a plan sink (see ``_plans``) and the
        :class:`~skemd._options.SolverOptions`. A method with ``warm_start``
        is also passed ``init=(U, V)``, starting dual potentials of shapes
        (c, n) and (c, m), when the caller gives some (``potentials_init``).
    parameters : mapping of str to Parameter
        The parameters ``solve`` reads from the options.
    needs_equal_mass : bool, default=True
        Whether ``a`` and ``b`` must have the same total mass (``b`` is then
        rescaled to the mass of ``a``).
    plan_formats : frozenset of str, default={"dense", "sparse"}
        The ``return_plan`` formats it can give.
    duals : bool, default=False
        Whether it can give optimal dual potentials (``return_duals``): its
        solver then puts them, for every problem, in the sink's ``duals``
        store when the sink has one (see ``_plans``).
    warm_start : bool, default=False
        Whether its solver can start from given dual potentials
        (``potentials_init``, passed to ``solve`` as ``init``).
    chunk_cost : int, default=1
        Arrays as large as the costs that a chunk holds while it is solved,
        for the engine's chunk sizing.
    min_chunk_cells : int, default=0
        The fewest cost cells worth a chunk, for solvers that run Python code
        per step of a whole chunk (fewer would hold the GIL for nothing).
    closed_forms : bool, default=False
        Whether the pairwise closed forms (histograms on a line) give this
        method's values.
    symmetric_pairs : bool, default=True
        Whether, under a symmetric ground cost with a zero diagonal, its value
        is exactly symmetric in the two samples and 0 between a sample and
        itself, so that pairwise matrices solve only the pairs above the
        diagonal.
    emd_bounds : bool, default=False
        Whether its values are exact balanced EMDs, so that the EMD's lower
        bounds (``skemd._bounds``) may prune neighbour searches; other
        methods' searches solve every pair.
    check : callable, default=no check
        ``check(batch, options)`` raises ValueError, naming the problem, if
        the options do not suit a problem of the batch; run by every entry
        point before anything is solved.
    prepare : callable, default=no change
        ``prepare(batch, options) -> options``, run once per batch before
        solving, to resolve batch-dependent defaults.
    advise : callable, default="Increase max_iter."
        ``advise(options, costs) -> str``: what to change when problems did
        not converge, given some of their cost matrices.
    """

    name: str
    summary: str
    solve: Callable
    parameters: Mapping
    needs_equal_mass: bool = True
    plan_formats: frozenset = frozenset({"dense", "sparse"})
    duals: bool = False
    warm_start: bool = False
    chunk_cost: int = 1
    min_chunk_cells: int = 0
    closed_forms: bool = False
    symmetric_pairs: bool = True
    emd_bounds: bool = False
    check: Callable = _no_check
    prepare: Callable = _unchanged
    advise: Callable = _increase_max_iter


#: The method used when none is named.
DEFAULT_METHOD = "exact"

#: Every method, by name.
METHODS = {
    method.name: method
    for method in [
        Method(
            name="exact",
            summary="The exact EMD: the linear program, solved by an assignment "
            "solver or POT's network simplex.",
            solve=_exact.solve_exact,
            parameters={
                "max_iter": shared("max_iter", 100_000, "network simplex pivots"),
                "assignment_max_n": Parameter(
                    [Interval(Integral, 0, None, closed="left"), None],
                    None,
                    "The largest n of a uniform square problem solved as an "
                    "assignment; None measures which solver is faster above 100 "
                    "(both are exact, but tied plans and the last bits can then "
                    "differ between runs: set it for bit-for-bit reruns).",
                ),
            },
            duals=True,
            warm_start=True,
            closed_forms=True,
            emd_bounds=True,
            prepare=_exact.prepare,
            advise=_exact.advise,
        ),
        Method(
            name="sinkhorn",
            summary="Entropic OT: the Sinkhorn plan for regularisation ``reg``, "
            "valued ``<T, M>`` as ``ot.sinkhorn2`` does.",
            solve=_sinkhorn.solve_sinkhorn,
            parameters={
                "reg": shared("reg", REQUIRED, "the entropic regularisation, > 0"),
                "tol": shared("tol", 1e-9, "target-marginal violation, 2-norm"),
                "max_iter": shared("max_iter", 1000, "Sinkhorn iterations"),
            },
            plan_formats=frozenset({"dense"}),  # entropic plans have no zeros
            chunk_cost=2,  # the costs and the kernel K
            min_chunk_cells=1 << 18,
            # The entropic plan of (a, a) is not diagonal, and POT's stopping
            # rule checks only the target marginal: symmetric only to tol.
            symmetric_pairs=False,
            advise=_sinkhorn.advise,
        ),
        Method(
            name="partial",
            summary="Exact partial transport of a total mass ``mass`` between "
            "weights of any masses, as ``ot.partial.partial_wasserstein2`` "
            "with ``m=mass``.",
            solve=_partial.solve_partial,
            parameters={
                "max_iter": shared("max_iter", 100_000, "network simplex pivots"),
                "mass": Parameter(
                    [Interval(Real, 0, None, closed="left"), None],
                    None,
                    "The total mass to transport, at most the smaller of the "
                    "two masses; None is that smaller mass.",
                ),
            },
            needs_equal_mass=False,
            check=_partial.check,
            advise=_exact.advise,
        ),
        Method(
            name="unbalanced",
            summary="Entropic unbalanced OT between weights of any masses: the "
            "plan for regularisation ``reg`` whose marginals are held to ``a`` "
            "and ``b`` by KL penalties of weight ``reg_m``, valued ``<T, M>`` "
            "as ``ot.unbalanced.sinkhorn_unbalanced2`` does.",
            solve=_unbalanced.solve_unbalanced,
            parameters={
                "reg": shared("reg", REQUIRED, "the entropic regularisation, > 0"),
                "reg_m": Parameter(
                    [Interval(Real, 0, None, closed="neither")],
                    REQUIRED,
                    "The marginal relaxation, > 0, in ``method_params``: the "
                    "weight of the KL divergences of the plan's marginals from "
                    "a and b, in units of the costs (POT's reg_m); the larger, "
                    "the closer the marginals to a and b.",
                ),
                "tol": shared("tol", 1e-6, "POT's rule: scalings' relative change"),
                "max_iter": shared("max_iter", 1000, "Sinkhorn iterations"),
            },
            needs_equal_mass=False,
            plan_formats=frozenset({"dense"}),  # entropic plans have no zeros
            chunk_cost=2,  # the costs and the kernel K
            min_chunk_cells=1 << 18,
            # Not 0 from a sample to itself, and symmetric only to tol.
            symmetric_pairs=False,
            advise=_unbalanced.advise,
        ),
    ]
}
