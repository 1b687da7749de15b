"""Input contracts: turn costs and marginals into a validated `ProblemBatch`.

Every check runs before any solving, so a bad problem at the end of a large
batch fails in milliseconds, and every error names the offending problem.
"""

import sys
from dataclasses import dataclass

import numpy as np

from ._memmap import release_pages

#: Relative tolerance on ``|sum(a) - sum(b)| / max(sum(a), sum(b))``. Within
#: it, ``b`` is rescaled to the mass of ``a`` exactly as ``ot.emd`` does.
MASS_RTOL = 1e-6

# Costs are checked for finiteness in blocks of about this many bytes, so a
# memmapped batch is never read into memory whole.
_CHECK_BLOCK_BYTES = 1 << 24


@dataclass(frozen=True)
class ProblemBatch:
    """A validated batch of ``k`` optimal transport problems.

    Attributes
    ----------
    costs : ndarray of shape (k, n, m) or list of ndarray
        The cost matrices, finite. A dense batch keeps the caller's array (any
        real dtype, possibly a read-only memmap); each chunk is converted to
        float64 C-contiguous only when it is solved. A ragged batch is a list of float64
        C-contiguous 2-D arrays.
    a, b : None, ndarray or list of ndarray
        The marginals: ``None`` is uniform with mass 1, a 1-D array is shared
        by every problem, a 2-D array (or a list, for ragged batches) holds one
        row per problem. ``b`` is already rescaled to the mass of ``a``.
    """

    costs: object
    a: object = None
    b: object = None

    def __len__(self):
        return len(self.costs)

    @property
    def ragged(self):
        """Whether the problems may differ in shape (``costs`` is a list)."""
        return isinstance(self.costs, list)

    def __getitem__(self, index):
        """Return the sub-batch ``index`` (a slice) without copying costs."""
        return ProblemBatch(
            self.costs[index], _rows(self.a, index), _rows(self.b, index)
        )

    def __sizeof__(self):
        # The data's size: dask's joblib backend scatters large task
        # arguments once instead of embedding them in the task graph.
        parts = self.costs if self.ragged else [self.costs]
        parts = [*parts, self.a, self.b]
        return sys.getsizeof(object()) + sum(_nbytes(part) for part in parts)

    def masses(self):
        """Return the masses of ``a`` and ``b``, each of shape (k,)."""
        k = len(self)
        return _masses(self.a, k, "a"), _masses(self.b, k, "b")

    def marginal_rows(self):
        """Return the marginals of a dense batch as (k, n) and (k, m) rows.

        Shared marginals are broadcast views; None is uniform with mass 1.
        """
        k, n, m = self.costs.shape
        return _as_rows(self.a, k, n), _as_rows(self.b, k, m)

    def release(self):
        """Drop the resident pages of memmapped costs once they are solved."""
        if not self.ragged:
            release_pages(self.costs)


def _as_rows(w, k, size):
    return np.broadcast_to(np.full(size, 1.0 / size) if w is None else w, (k, size))


def _nbytes(part):
    if isinstance(part, list):
        return sum(w.nbytes for w in part)
    return getattr(part, "nbytes", 0)


def _rows(w, index):
    shared = w is None or (isinstance(w, np.ndarray) and w.ndim == 1)
    return w if shared else w[index]


def check_batch(M, a=None, b=None, *, equal_mass=True, name="M"):
    """Validate costs and marginals and return a :class:`ProblemBatch`.

    Parameters
    ----------
    M : array-like of shape (k, n, m) or sequence of array-like of shape (n_i, m_i)
        The cost matrices. A sequence whose items differ in shape is a ragged
        batch.
    a, b : array-like of shape (n,) or (k, n), sequence of array-like, default=None
        Source and target weights; ``None`` means uniform.
    equal_mass : bool, default=True
        Whether the masses of ``a`` and ``b`` must agree (the method's
        ``needs_equal_mass``); ``b`` is then rescaled to the mass of ``a``.
    name : str, default="M"
        How error messages call the costs.

    Returns
    -------
    batch : ProblemBatch
        The validated batch.

    Raises
    ------
    ValueError
        If a cost is not finite, a weight is negative or not finite, a weight
        vector sums to 0 or overflows, the masses of ``a`` and ``b`` differ by
        more than :data:`MASS_RTOL` (with ``equal_mass``), or the shapes do
        not match. The message names the problem index.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._validation import check_batch
    >>> len(check_batch(np.zeros((3, 2, 4))))
    3
    >>> check_batch(np.zeros((3, 2, 2)), a=[1.0, -1.0])
    Traceback (most recent call last):
    ...
    ValueError: a has a negative or non-finite weight -1.0 at position 1.
    """
    costs, shapes = _check_costs(M, name)
    ragged = isinstance(costs, list)
    if a is None and b is None:
        return ProblemBatch(costs)
    k = len(shapes)
    a = _check_weights(a, "a", shapes[:, 0], ragged)
    b = _check_weights(b, "b", shapes[:, 1], ragged)
    mass_a, mass_b = _masses(a, k, "a"), _masses(b, k, "b")
    if not equal_mass:
        return ProblemBatch(costs, a, b)
    _check_equal_mass(mass_a, mass_b)
    return ProblemBatch(costs, a, _rescale(b, a, mass_a, mass_b, k, ragged))


def _check_costs(M, name):
    """Return the costs (dense array or list) and the (k, 2) problem shapes."""
    if isinstance(M, (list, tuple)) and not _is_nested_numbers(M):
        return _check_cost_list(M, name)
    M = M if isinstance(M, np.ndarray) else np.asarray(M)
    if M.ndim != 3:
        raise ValueError(
            f"{name} must be a 3-D array of shape (k, n, m) or a sequence of 2-D cost "
            f"matrices; got an array with ndim={M.ndim} and shape {M.shape}."
        )
    _check_real_dtype(M.dtype, name)
    k, n, m = M.shape
    if k and (n == 0 or m == 0):
        raise ValueError(f"The cost matrices must not be empty; got shape {M.shape}.")
    block = max(1, _CHECK_BLOCK_BYTES // max(1, n * m * M.itemsize))
    for start in range(0, k, block):
        _check_finite_costs(M[start : start + block], name, offset=start)
        release_pages(M[start : start + block])
    return M, np.broadcast_to(np.array([n, m]), (k, 2))


def _is_nested_numbers(M):
    # A list of lists of numbers is one 3-D array-like, not a ragged batch.
    if len(M) == 0 or isinstance(M[0], np.ndarray):
        return False
    try:
        return np.ndim(M[0]) != 2
    except ValueError:  # a member with rows of different lengths: named below
        return False


def _check_cost_list(M, name):
    costs = []
    for i, Mi in enumerate(M):
        try:
            Mi = np.asarray(Mi)
        except ValueError:
            raise ValueError(
                f"Cost matrix {name}[{i}] is not a rectangular 2-D array: its rows "
                "differ in length."
            ) from None
        if Mi.ndim != 2 or 0 in Mi.shape:
            raise ValueError(
                f"Cost matrix {name}[{i}] must be a non-empty 2-D array; got shape "
                f"{Mi.shape}."
            )
        _check_real_dtype(Mi.dtype, f"{name}[{i}]")
        Mi = np.ascontiguousarray(Mi, dtype=np.float64)
        _check_finite_costs(Mi[None], name, offset=i)
        costs.append(Mi)
    shapes = np.array([Mi.shape for Mi in costs], dtype=np.intp).reshape(-1, 2)
    if len(costs) and (shapes == shapes[0]).all():
        return np.stack(costs), shapes
    return costs, shapes


def _check_real_dtype(dtype, name):
    if dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers; got dtype {dtype}.")


def _check_finite_costs(block, name, offset):
    finite = np.isfinite(block)
    if finite.all():
        return
    i, row, col = np.argwhere(~finite)[0]
    raise ValueError(
        f"Cost matrix {name}[{offset + i}] has a non-finite cost {block[i, row, col]} "
        f"at position ({row}, {col})."
    )


def _check_weights(w, name, sizes, ragged):
    """Validate one marginal; return None, a shared 1-D, a 2-D array or a list."""
    if w is None:
        if not ragged:
            return np.full(sizes[0], 1.0 / sizes[0]) if len(sizes) else None
        return [np.full(s, 1.0 / s) for s in sizes]
    if ragged:
        if not isinstance(w, (list, tuple)) or len(w) != len(sizes):
            raise ValueError(
                f"For a ragged batch of {len(sizes)} problems, {name} must be None or "
                f"a sequence of {len(sizes)} 1-D weight vectors."
            )
        return [
            _check_weight_vector(wi, f"{name}[{i}]", s)
            for i, (wi, s) in enumerate(zip(w, sizes, strict=True))
        ]
    w = np.asarray(w)
    _check_real_dtype(w.dtype, name)
    w = np.ascontiguousarray(w, dtype=np.float64)
    k = len(sizes)
    size = sizes[0] if k else (w.shape[-1] if w.ndim else 0)
    if w.ndim == 1:
        return _check_weight_vector(w, name, size)
    if w.ndim != 2 or w.shape != (k, size):
        raise ValueError(
            f"{name} must have shape ({size},) (shared) or ({k}, {size}) (one row "
            f"per problem) to match M; got shape {w.shape}."
        )
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"{name}[{i}] (problem {i}) has a negative or non-finite weight "
            f"{w[i, j]} at position {j}."
        )
    _check_positive_mass(w.sum(axis=1), name)
    return w


def _check_weight_vector(w, name, size):
    w = np.asarray(w)
    _check_real_dtype(w.dtype, name)
    w = np.ascontiguousarray(w, dtype=np.float64)
    if w.shape != (size,):
        raise ValueError(
            f"{name} must have shape ({size},) to match the cost matrix; got shape "
            f"{w.shape}."
        )
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        j = np.flatnonzero(bad)[0]
        raise ValueError(
            f"{name} has a negative or non-finite weight {w[j]} at position {j}."
        )
    with np.errstate(over="ignore"):  # an overflow is reported with the masses
        empty = size and w.sum() == 0
    if empty:
        raise ValueError(f"{name} sums to 0: a marginal needs positive mass.")
    return w


def _check_positive_mass(masses, name):
    zero = np.flatnonzero(masses == 0)
    if zero.size:
        i = zero[0]
        raise ValueError(
            f"{name}[{i}] (problem {i}) sums to 0: a marginal needs positive mass."
        )


def _masses(w, k, name):
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
