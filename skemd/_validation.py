"""Input contracts: turn costs and marginals into a validated `ProblemBatch`.

Every check runs before any solving, so a bad problem at the end of a large
batch fails in milliseconds, and every error names the offending problem.
"""

import sys
from dataclasses import dataclass

import numpy as np

from ._memmap import release_pages
from ._vectors import check_marginals, check_potentials, check_real_dtype, total_masses

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
    potentials : None or tuple of (alpha, beta)
        Starting dual potentials for a warm start, each shared (1-D), one row
        per problem (2-D) or a list (ragged); see ``potentials_init`` in
        :func:`skemd.emd_batch`.
    """

    costs: object
    a: object = None
    b: object = None
    potentials: object = None

    def __len__(self):
        return len(self.costs)

    @property
    def ragged(self):
        """Whether the problems may differ in shape (``costs`` is a list)."""
        return isinstance(self.costs, list)

    def __getitem__(self, index):
        """Return the sub-batch ``index`` (a slice) without copying costs."""
        potentials = self.potentials
        if potentials is not None:
            potentials = tuple(_rows(p, index) for p in potentials)
        return ProblemBatch(
            self.costs[index], _rows(self.a, index), _rows(self.b, index), potentials
        )

    def __sizeof__(self):
        # The data's size: dask's joblib backend scatters large task
        # arguments once instead of embedding them in the task graph.
        parts = self.costs if self.ragged else [self.costs]
        parts = [*parts, self.a, self.b, *(self.potentials or ())]
        return sys.getsizeof(object()) + sum(_nbytes(part) for part in parts)

    def masses(self):
        """Return the masses of ``a`` and ``b``, each of shape (k,)."""
        k = len(self)
        return total_masses(self.a, k, "a"), total_masses(self.b, k, "b")

    def marginal_rows(self):
        """Return the marginals of a dense batch as (k, n) and (k, m) rows.

        Shared marginals are broadcast views; None is uniform with mass 1.
        """
        k, n, m = self.costs.shape
        return _as_rows(self.a, k, n), _as_rows(self.b, k, m)

    def potential_rows(self):
        """Return the starting potentials of a dense batch as (k, n) and (k, m) rows.

        None when the batch has none; shared potentials are broadcast views.
        """
        if self.potentials is None:
            return None
        return tuple(_as_rows(p, len(self), p.shape[-1]) for p in self.potentials)

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


def check_batch(M, a=None, b=None, *, potentials=None, equal_mass=True, name="M"):
    """Validate costs and marginals and return a :class:`ProblemBatch`.

    Parameters
    ----------
    M : array-like of shape (k, n, m) or sequence of array-like of shape (n_i, m_i)
        The cost matrices. A sequence whose items differ in shape is a ragged
        batch.
    a, b : array-like of shape (n,) or (k, n), sequence of array-like, default=None
        Source and target weights; ``None`` means uniform.
    potentials : tuple of (alpha, beta), default=None
        Starting dual potentials, shaped as ``a`` and ``b`` and finite.
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
        If a cost or a potential is not finite, a weight is negative or not
        finite, a weight vector sums to 0 or overflows, the masses of ``a`` and
        ``b`` differ by more than :data:`~skemd._vectors.MASS_RTOL` (with
        ``equal_mass``), or the shapes do not match. The message names the
        problem index.

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
    if potentials is not None:
        potentials = check_potentials(potentials, shapes, ragged)
    if a is None and b is None:
        return ProblemBatch(costs, potentials=potentials)
    a, b = check_marginals(a, b, shapes, ragged, equal_mass)
    return ProblemBatch(costs, a, b, potentials)


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
    check_real_dtype(M.dtype, name)
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
        check_real_dtype(Mi.dtype, f"{name}[{i}]")
        Mi = np.ascontiguousarray(Mi, dtype=np.float64)
        _check_finite_costs(Mi[None], name, offset=i)
        costs.append(Mi)
    shapes = np.array([Mi.shape for Mi in costs], dtype=np.intp).reshape(-1, 2)
    if len(costs) and (shapes == shapes[0]).all():
        return np.stack(costs), shapes
    return costs, shapes


def _check_finite_costs(block, name, offset):
    finite = np.isfinite(block)
    if finite.all():
        return
    i, row, col = np.argwhere(~finite)[0]
    raise ValueError(
        f"Cost matrix {name}[{offset + i}] has a non-finite cost {block[i, row, col]} "
        f"at position ({row}, {col})."
    )
