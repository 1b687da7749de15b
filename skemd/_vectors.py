"""Per-problem vectors: the marginals and the starting potentials.

Each is given shared (1-D), one row per problem (2-D) or, for a ragged batch,
as a sequence of 1-D vectors. This module checks their shapes and values,
naming the problem, and the marginals' masses (positive, finite, equal).
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

#: Relative tolerance on ``|sum(a) - sum(b)| / max(sum(a), sum(b))``. Within
#: it, ``b`` is rescaled to the mass of ``a`` exactly as ``ot.emd`` does.
MASS_RTOL = 1e-6


def check_marginals(a, b, shapes, ragged, equal_mass):
    """Validate the marginals of a batch whose problems have ``shapes``.

    Parameters
    ----------
    a, b : array-like, sequence of array-like or None
        Source and target weights, as :func:`skemd.emd_batch` takes them.
    shapes : ndarray of shape (k, 2)
        Each problem's (n, m).
    ragged : bool
        Whether the problems may differ in shape (``a`` and ``b`` are then
        sequences).
    equal_mass : bool
        Whether the masses must agree within :data:`MASS_RTOL`; ``b`` is then
        rescaled to the mass of ``a`` with the same arithmetic as ``ot.emd``.

    Returns
    -------
    a, b : ndarray or list of ndarray
        Float64 weights: shared (1-D), one row per problem (2-D) or a list;
        None is uniform with mass 1.

    Raises
    ------
    ValueError
        If a shape does not match, a weight is negative or not finite, a
        weight vector sums to 0 or overflows, or (with ``equal_mass``) the
        masses differ. The message names the problem.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._vectors import check_marginals
    >>> check_marginals([1, 1], [0.5, 1.5], np.array([[2, 2]]), False, True)
    (array([1., 1.]), array([0.5, 1.5]))
    >>> check_marginals([1, 1], [1, 2], np.array([[2, 2]]), False, False)
    (array([1., 1.]), array([1., 2.]))
    >>> check_marginals([1, 1], [1, 2], np.array([[2, 2]]), False, True)
    Traceback (most recent call last):
    ...
    ValueError: Problem 0: a and b have different total masses (2.0 vs 3.0); ...
    """
    k = len(shapes)
    a = _check_weights(a, "a", shapes[:, 0], ragged)
    b = _check_weights(b, "b", shapes[:, 1], ragged)
    mass_a, mass_b = total_masses(a, k, "a"), total_masses(b, k, "b")
    if equal_mass:
        _check_equal_mass(mass_a, mass_b)
        b = _rescale(b, a, mass_a, mass_b, k, ragged)
    return a, b


class _Kind(NamedTuple):
    """What the vectors of one kind may hold."""

    noun: str  # "weight" or "potential"
    bad: str  # what a bad entry is
    is_bad: Callable  # the mask of bad entries
    or_none: str  # "None or " where None (uniform) may stand for a vector


_WEIGHTS = _Kind(
    "weight", "negative or non-finite", lambda w: ~np.isfinite(w) | (w < 0), "None or "
)
_POTENTIALS = _Kind("potential", "non-finite", lambda w: ~np.isfinite(w), "")


def _check_weights(w, name, sizes, ragged):
    """Validate one marginal; return None, a shared 1-D, a 2-D array or a list."""
    if w is None:
        if not ragged:
            return np.full(sizes[0], 1.0 / sizes[0]) if len(sizes) else None
        return [np.full(s, 1.0 / s) for s in sizes]
    w = _check_vectors(w, name, sizes, ragged, _WEIGHTS)
    if ragged:
        for i, wi in enumerate(w):
            _check_positive_mass(wi, f"{name}[{i}]")
    else:
        _check_positive_mass(w, name, per_problem=w.ndim == 2)
    return w


def _check_vectors(w, name, sizes, ragged, kind):
    """Check the shapes and values of one vector per problem (``sizes``).

    ``w`` is shared (1-D), one row per problem (2-D) or, for a ragged batch, a
    sequence of 1-D vectors; ``kind`` is ``_WEIGHTS`` or ``_POTENTIALS``.
    """
    if ragged:
        if not isinstance(w, (list, tuple)) or len(w) != len(sizes):
            raise ValueError(
                f"For a ragged batch of {len(sizes)} problems, {name} must be "
                f"{kind.or_none}a sequence of {len(sizes)} 1-D {kind.noun} vectors."
            )
        return [
            _check_vector(wi, f"{name}[{i}]", s, kind)
            for i, (wi, s) in enumerate(zip(w, sizes, strict=True))
        ]
    w = _as_float64(w, name)
    k = len(sizes)
    size = sizes[0] if k else (w.shape[-1] if w.ndim else 0)
    if w.ndim == 1:
        return _check_vector(w, name, size, kind)
    if w.ndim != 2 or w.shape != (k, size):
        raise ValueError(
            f"{name} must have shape ({size},) (shared) or ({k}, {size}) (one row "
            f"per problem) to match M; got shape {w.shape}."
        )
    return _check_values(w, name, kind)


def check_weight_vector(w, name, size):
    """Validate one weight vector of ``size`` entries.

    Parameters
    ----------
    w : array-like of shape (size,)
        The weights.
    name : str
        How error messages call it.
    size : int
        The number of entries it must have.

    Returns
    -------
    w : ndarray of shape (size,)
        The weights, float64 and C-contiguous.

    Raises
    ------
    ValueError
        If the shape differs, a weight is negative or not finite, or the
        weights sum to 0.

    Examples
    --------
    >>> from skemd._vectors import check_weight_vector
    >>> check_weight_vector([1, 3], "weights[0]", 2)
    array([1., 3.])
    >>> check_weight_vector([0, 0], "weights[1]", 2)
    Traceback (most recent call last):
    ...
    ValueError: weights[1] sums to 0: a marginal needs positive mass.
    """
    w = _check_vector(w, name, size, _WEIGHTS)
    _check_positive_mass(w, name)
    return w


def _check_vector(w, name, size, kind):
    w = _as_float64(w, name)
    if w.shape != (size,):
        raise ValueError(
            f"{name} must have shape ({size},) to match the cost matrix; got shape "
            f"{w.shape}."
        )
    return _check_values(w, name, kind)


def _check_values(w, name, kind):
    """Return ``w`` C-contiguous; raise, naming the problem, at a bad entry."""
    w = np.ascontiguousarray(w)
    bad = kind.is_bad(w)
    if bad.any():
        *row, j = np.argwhere(bad)[0]
        where = f"[{row[0]}] (problem {row[0]})" if row else ""
        raise ValueError(
            f"{name}{where} has a {kind.bad} {kind.noun} {w[(*row, j)]} at "
            f"position {j}."
        )
    return w


def _as_float64(w, name):
    """``w`` as a float64 array of its own shape (a scalar stays 0-d)."""
    try:
        w = np.asarray(w)
    except ValueError as error:  # a ragged nesting of lists
        raise ValueError(f"{name} must be an array of numbers: {error}") from None
    check_real_dtype(w.dtype, name)
    return w.astype(np.float64, copy=False)


def _check_positive_mass(w, name, per_problem=False):
    with np.errstate(over="ignore"):  # an overflow is reported with the masses
        masses = np.atleast_1d(w.sum(axis=-1))
    zero = np.flatnonzero((masses == 0) & (w.shape[-1] > 0))
    if zero.size:
        i = zero[0]
        where = f"[{i}] (problem {i})" if per_problem else ""
        raise ValueError(f"{name}{where} sums to 0: a marginal needs positive mass.")


def total_masses(w, k, name):
    """Return the mass of each of ``k`` problems' weights ``w``.

    Parameters
    ----------
    w : None, ndarray or list of ndarray
        Checked weights: None (uniform, mass 1), shared (1-D), one row per
        problem (2-D) or a list.
    k : int
        The number of problems.
    name : str
        How error messages call the weights.

    Returns
    -------
    masses : ndarray of shape (k,)
        The masses.

    Raises
    ------
    ValueError
        If a mass overflows float64, naming the problem.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._vectors import total_masses
    >>> total_masses(np.array([[1.0, 2.0], [0.5, 0.5]]), 2, "a")
    array([3., 1.])
    >>> total_masses(np.array([1e308, 1e308]), 2, "b")
    Traceback (most recent call last):
    ...
    ValueError: b of problem 0 sums to inf: the total mass overflows float64; ...
    """
    if w is None:
        return np.ones(k)
    with np.errstate(over="ignore"):  # an overflow is reported below
        if isinstance(w, list):
            masses = np.array([wi.sum() for wi in w], dtype=np.float64)
        else:
            masses = np.full(k, w.sum()) if w.ndim == 1 else w.sum(axis=1)
    overflow = np.flatnonzero(~np.isfinite(masses))
    if overflow.size:
        i = overflow[0]
        raise ValueError(
            f"{name} of problem {i} sums to {masses[i]}: the total mass overflows "
            "float64; rescale the weights."
        )
    return masses


def _check_equal_mass(mass_a, mass_b):
    gap = np.abs(mass_a - mass_b) > MASS_RTOL * np.maximum(mass_a, mass_b)
    if gap.any():
        i = np.flatnonzero(gap)[0]
        raise ValueError(
            f"Problem {i}: a and b have different total masses ({float(mass_a[i])!r} "
            f"vs {float(mass_b[i])!r}); they must agree within a relative tolerance of "
            f"{MASS_RTOL:g}."
        )


def _rescale(b, a, mass_a, mass_b, k, ragged):
    """Rescale ``b`` to the mass of ``a`` with the same arithmetic as ``ot.emd``."""
    if ragged:
        return [bi * ma / mb for bi, ma, mb in zip(b, mass_a, mass_b, strict=True)]
    if k == 0:
        return b
    if a.ndim == 1 and b.ndim == 1:
        return b * mass_a[0] / mass_b[0]
    return np.broadcast_to(b, (k, b.shape[-1])) * mass_a[:, None] / mass_b[:, None]


def check_potentials(potentials, shapes, ragged):
    """Validate ``potentials_init``: a pair (alpha, beta) of finite potentials.

    Parameters
    ----------
    potentials : tuple or list of two array-like
        ``alpha`` shaped as ``a`` and ``beta`` as ``b`` would be.
    shapes : ndarray of shape (k, 2)
        Each problem's (n, m).
    ragged : bool
        Whether they are given as sequences of 1-D vectors.

    Returns
    -------
    potentials : tuple of (ndarray or list, ndarray or list)
        The float64 potentials.

    Raises
    ------
    ValueError
        If it is not a pair, a shape does not match or a potential is not
        finite, naming the problem.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._vectors import check_potentials
    >>> shapes = np.array([[2, 3], [2, 3]])
    >>> alpha, beta = check_potentials(([0, 1], np.zeros((2, 3))), shapes, False)
    >>> alpha, beta.shape
    (array([0., 1.]), (2, 3))
    >>> check_potentials(([0, 1], [[0, 0, 0], [0, np.inf, 0]]), shapes, False)
    Traceback (most recent call last):
    ...
    ValueError: potentials_init[1][1] (problem 1) has a non-finite potential inf ...
    """
    if not isinstance(potentials, (list, tuple)) or len(potentials) != 2:
        raise ValueError(
            "potentials_init must be a pair (alpha, beta) of dual potentials, such "
            "as (result.dual_a, result.dual_b) of a call with return_duals=True."
        )
    for side, p in enumerate(potentials):
        if p is None:
            raise ValueError(
                f"potentials_init[{side}] is None: pass (result.dual_a, "
                "result.dual_b) of a call with return_duals=True."
            )
    return tuple(
        _check_vectors(
            p, f"potentials_init[{side}]", shapes[:, side], ragged, _POTENTIALS
        )
        for side, p in enumerate(potentials)
    )


def check_real_dtype(dtype, name):
    """Raise a ValueError unless ``dtype`` holds real numbers.

    Parameters
    ----------
    dtype : numpy.dtype
        The dtype to check.
    name : str
        How the error message calls the array.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._vectors import check_real_dtype
    >>> check_real_dtype(np.dtype(complex), "M")
    Traceback (most recent call last):
    ...
    ValueError: M must hold real numbers; got dtype complex128.
    """
    if dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers; got dtype {dtype}.")
