"""Solver options: what to solve and how to run it, validated once.

Each public function and estimator builds one :class:`SolverOptions` from its
arguments at the entry point and passes it down whole. Below that, the
driver, the engine and the solvers read it and never fill in defaults of
their own: the defaults and constraints come from the method registry, and
so do the ``method`` choices and their documentation.
"""

import dataclasses
import textwrap
from numbers import Integral

from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
)

from ._progress import VERBOSE_DOC
from ._solvers import DEFAULT_METHOD, METHODS, REQUIRED, SHARED_PARAMETERS

#: The arguments, besides ``return_plan``, that every public function and
#: estimator passes to :meth:`SolverOptions.build`: constraints and default.
SOLVER_ARGUMENTS = {
    "method": ([StrOptions(set(METHODS))], DEFAULT_METHOD),
    **{name: ([*p.constraints, None], None) for name, p in SHARED_PARAMETERS.items()},
    "method_params": ([dict, None], None),
    "n_jobs": ([Integral, None], None),
    "batch_size": (
        [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "auto",
    ),
    "verbose": (["verbose"], 0),
}

#: The constraints of :data:`SOLVER_ARGUMENTS`, for ``_parameter_constraints``.
SOLVER_CONSTRAINTS = {name: spec[0] for name, spec in SOLVER_ARGUMENTS.items()}

#: The arguments of the batch functions, ``emd_batch`` and ``iter_emd_batch``.
BATCH_CONSTRAINTS = {
    "M": ["array-like"],
    "a": ["array-like", None],
    "b": ["array-like", None],
    "return_plan": ["boolean", StrOptions({"dense", "sparse"})],
    "return_duals": ["boolean"],
    "potentials_init": [tuple, list, None],
    **SOLVER_CONSTRAINTS,
}


@dataclasses.dataclass(frozen=True)
class SolverOptions:
    """The validated options of one call: method, parameters, plans, parallelism.

    Build it with :meth:`build` (or :meth:`from_params`), never directly.

    Attributes
    ----------
    method : str
        A key of the method registry.
    params : tuple of (str, object)
        Every parameter of the method, resolved: given, or its default.
        Read one with ``options[name]``.
    plan : {None, "dense", "sparse"}
        The plan format asked for.
    duals : bool
        Whether dual potentials are asked for.
    n_jobs : int or None
        Parallel jobs, as joblib counts them.
    batch_size : int or "auto"
        Problems per chunk.
    verbose : int or bool
        1 shows a progress bar; 2 and more also joblib's messages.
    """

    method: str
    params: tuple
    plan: object
    duals: bool
    n_jobs: object
    batch_size: object
    verbose: int

    @classmethod
    def build(
        cls, *, return_plan=False, return_duals=False, potentials_init=None, **arguments
    ):
        """Validate the arguments of a public entry point into options.

        Parameters
        ----------
        return_plan : bool, "dense" or "sparse", default=False
            The plans asked for.
        return_duals : bool, default=False
            Whether dual potentials are asked for.
        potentials_init : object, default=None
            Starting potentials, validated with the problems; here only
            whether some are given matters (the method must take them).
        **arguments : dict
            Any of :data:`SOLVER_ARGUMENTS`, as :func:`skemd.emd_batch` takes
            them; the others take their defaults. A shared parameter that the
            method does not read is ignored.

        Returns
        -------
        options : SolverOptions
            The validated options.

        Raises
        ------
        ValueError
            If the method is unknown, a required parameter is missing, a
            value breaks its constraints, ``method_params`` names a parameter
            no method has, or the method cannot give the plan format or the
            dual potentials, or cannot start from given potentials.

        Examples
        --------
        >>> from skemd._options import SolverOptions
        >>> options = SolverOptions.build(method="sinkhorn", reg=0.1)
        >>> options["reg"], options["tol"], options["max_iter"]
        (0.1, 1e-09, 1000)
        >>> SolverOptions.build(method="sinkhorn")
        Traceback (most recent call last):
        ...
        ValueError: method='sinkhorn' needs reg (the entropic regularisation, ...
        """
        unknown = set(arguments) - set(SOLVER_ARGUMENTS)
        if unknown:
            raise TypeError(f"Unknown solver arguments {sorted(unknown)}.")
        arguments = {name: spec[1] for name, spec in SOLVER_ARGUMENTS.items()} | (
            arguments
        )
        method = arguments["method"]
        if method not in METHODS:
            raise ValueError(
                f"Unknown method={method!r}; the methods are {sorted(METHODS)}."
            )
        spec = METHODS[method]
        extra = _check_method_params(arguments["method_params"])
        params = {}
        for name, parameter in spec.parameters.items():
            value = arguments[name] if name in SHARED_PARAMETERS else extra.get(name)
            if value is None:
                value = parameter.default
            if value is REQUIRED:
                raise ValueError(
                    f"method={method!r} needs {name} ({parameter.doc}); got "
                    f"{name}=None."
                )
            params[name] = value
        validate_parameter_constraints(
            {name: p.constraints for name, p in spec.parameters.items()},
            params,
            caller_name=f"method={method!r}",
        )
        plan = {False: None, True: "dense"}.get(return_plan, return_plan)
        if plan is not None and plan not in spec.plan_formats:
            raise ValueError(
                f"return_plan={return_plan!r} is not available with "
                f"method={method!r}, which gives "
                f"{' or '.join(sorted(spec.plan_formats))} plans."
            )
        if return_duals:
            _check_able(method, "duals", "return_duals=True", "give dual potentials")
        if potentials_init is not None:
            _check_able(
                method, "warm_start", "potentials_init", "start from dual potentials"
            )
        return cls(
            method,
            tuple(params.items()),
            plan,
            bool(return_duals),
            arguments["n_jobs"],
            arguments["batch_size"],
            arguments["verbose"],
        )

    @classmethod
    def from_params(cls, params, **overrides):
        """Build options from a mapping that holds the arguments of :meth:`build`.

        Parameters
        ----------
        params : mapping
            For instance an estimator's ``get_params()``; keys that are not
            arguments of :meth:`build` are ignored.
        **overrides : dict
            Arguments that replace or add to ``params``.

        Returns
        -------
        options : SolverOptions
            The validated options.
        """
        names = [*SOLVER_ARGUMENTS, "return_plan", "return_duals", "potentials_init"]
        chosen = {name: params[name] for name in names if name in params}
        return cls.build(**(chosen | overrides))

    @property
    def spec(self):
        """The method's registry entry, a :class:`~skemd._solvers.Method`."""
        return METHODS[self.method]

    def __getitem__(self, name):
        """The value of the method's parameter ``name``."""
        return dict(self.params)[name]

    def get(self, name, default=None):
        """The value of parameter ``name``, or ``default`` if the method has none."""
        return dict(self.params).get(name, default)

    def replace(self, **params):
        """Return options with some parameters of the method replaced."""
        current = dict(self.params)
        unknown = set(params) - set(current)
        if unknown:
            raise ValueError(f"method={self.method!r} has no parameter {unknown}.")
        return dataclasses.replace(self, params=tuple((current | params).items()))

    @property
    def identity(self):
        """What decides the values: the method and its parameters, JSON-able."""
        return {"method": self.method, **dict(self.params)}


def _check_able(method, flag, argument, ability):
    """Refuse ``argument`` unless the method's registry ``flag`` is set."""
    if not getattr(METHODS[method], flag):
        able = [name for name, m in METHODS.items() if getattr(m, flag)]
        raise ValueError(
            f"{argument} is not available with method={method!r}; the methods "
            f"that {ability} are {able}."
        )


def _check_method_params(method_params):
    extra = dict(method_params or {})
    for name in extra:
        if name in SHARED_PARAMETERS:
            raise ValueError(
                f"Pass {name} as its own argument ({name}=...), not in method_params."
            )
        if not any(name in spec.parameters for spec in METHODS.values()):
            own = sorted(
                {n for spec in METHODS.values() for n in spec.parameters}
                - set(SHARED_PARAMETERS)
            )
            raise ValueError(
                f"method_params has {name!r}, which no method takes; the "
                f"methods' own parameters are {own}."
            )
    return extra


def document_solver_parameters(obj):
    """Fill the ``%(solver_parameters)s`` and ``%(verbose)s`` lines of a docstring.

    The first becomes the numpydoc entries of ``method``, the shared
    parameters and ``method_params``, written from the method registry; the
    second, if there is one, the entry of ``verbose``. Each is written at its
    line's indentation.

    Parameters
    ----------
    obj : function or class
        What to document.

    Returns
    -------
    obj : function or class
        ``obj``, with its docstring filled.
    """
    entries = {
        "%(solver_parameters)s": _solver_parameters_doc(),
        "%(verbose)s": VERBOSE_DOC.splitlines(),
    }
    doc = obj.__doc__
    for line in doc.splitlines():
        lines = entries.get(line.strip())
        if lines is not None:
            indent = line[: line.index("%")]
            text = "\n".join(indent + s if s else s for s in lines)
            doc = doc.replace(line, text)
    obj.__doc__ = doc
    return obj


def _solver_parameters_doc():
    names = ", ".join(f'"{name}"' for name in METHODS)
    lines = [f'method : {{{names}}}, default="{DEFAULT_METHOD}"', "    The method:", ""]
    for spec in METHODS.values():
        lines += _wrap(f'- "{spec.name}": {spec.summary}', "    ", "      ")
    for name, shared in SHARED_PARAMETERS.items():
        users = {
            m: p.parameters[name] for m, p in METHODS.items() if name in p.parameters
        }
        needed = [
            f'"{m}" needs it ({p.doc}).'
            for m, p in users.items()
            if p.default is REQUIRED
        ]
        defaults = [
            f'{p.default!r} for "{m}" ({p.doc})'
            for m, p in users.items()
            if p.default is not REQUIRED
        ]
        text = " ".join([shared.doc, *needed])
        if defaults:
            text += f" None means the method's default: {'; '.join(defaults)}."
        if len(users) < len(METHODS):
            text += " Ignored by the other methods, so a grid search can vary both."
        lines += [f"{name} : {shared.type}, default=None", *_wrap(text, "    ")]
    lines += [
        "method_params : dict, default=None",
        "    The method's own parameters, by name; a parameter of another method",
        "    is ignored:",
        "",
    ]
    for spec in METHODS.values():
        for name, parameter in spec.parameters.items():
            if name not in SHARED_PARAMETERS:
                text = (
                    f'- "{spec.name}": ``{name}``, default {parameter.default!r}. '
                    f"{parameter.doc}"
                )
                lines += _wrap(text, "    ", "      ")
    return lines


def _wrap(text, indent, subsequent=None):
    return textwrap.wrap(
        text,
        width=79,
        initial_indent=indent,
        subsequent_indent=indent if subsequent is None else subsequent,
        break_on_hyphens=False,
    )
