"""Samples from the caller's arrays: histograms and point clouds, validated.

This module owns turning what :func:`~skemd.pairwise_emd` and the estimators
are given (histograms, point clouds of equal or different sizes, the clouds'
weights) into :class:`~skemd._ground.Samples`, before anything is solved:
every error names the sample, and samples compared with others must be of
their kind, bins or dimension. Masses are kept as given.
"""

import numpy as np
from sklearn.utils.validation import check_array

from ._ground import Samples
from ._vectors import check_weight_vector


def check_samples(X, weights=None, *, name="X", like=None, against=None, whom=None):
    """Validate histograms or point clouds, and the clouds' weights, into Samples.

    Parameters
    ----------
    X : array-like or sequence of array-like
        Histograms (n, n_bins), clouds (n, n_points, d) or a sequence of
        clouds (n_i, d), stacked when of equal sizes.
    weights : array-like or sequence of array-like, default=None
        One weight vector per cloud; None is uniform. Histograms take none.
    name : str, default="X"
        How messages call ``X``; its weights are ``weights`` for ``"X"``,
        ``{name}_weights`` else.
    like : Samples, default=None
        Samples that ``X`` must match in kind and in bins or dimension.
    against : str, default=None
        How messages call ``like`` ("but {against} histograms"); default
        "X has".
    whom : str, default=None
        The recipient named by the error about a negative bin; default
        "pairwise_emd".

    Returns
    -------
    samples : Samples
        The samples, float64, with their masses as given.

    Raises
    ------
    ValueError
        Naming the first sample with a non-finite value, a negative bin, no
        mass, a shape that does not fit, or weights that do not fit its cloud.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._samples import check_samples
    >>> clouds = check_samples([[[0, 0], [1, 1]], [[2, 2]]], [[1, 3], [1]])
    >>> clouds.histograms, clouds.weights
    (False, [array([1., 3.]), array([1.])])
    >>> check_samples(np.array([[0.5, 0.5], [0.0, 0.0]]))
    Traceback (most recent call last):
    ...
    ValueError: X[1] is an empty histogram (all bins are 0).
    >>> check_samples(np.ones((1, 3)), name="Y", like=check_samples(np.ones((1, 2))))
    Traceback (most recent call last):
    ...
    ValueError: Y has samples of shape (3,), but X has samples of shape (2,).
    """
    wname = "weights" if name == "X" else f"{name}_weights"
    clouds = cloud_list(X)
    if clouds is None:
        data = check_array(
            X, allow_nd=True, dtype=np.float64, ensure_all_finite=False, input_name=name
        )
        if data.ndim not in (2, 3):
            raise ValueError(
                f"{name} must be histograms of shape (n_samples, n_bins), point "
                "clouds of shape (n_samples, n_points, d), or a list of clouds of "
                f"shape (n_points_i, d); got shape {data.shape}."
            )
        _check_finite(data, name)
        shapes = [data.shape[1:]]
    else:
        data = [_check_cloud(x, f"{name}[{i}]") for i, x in enumerate(clouds)]
        shapes = [x.shape for x in data]
        data = np.stack(data) if len(set(shapes)) == 1 else data
    default = "X has" if like is not None else f"{name}[0] has"
    _check_like(name, shapes, like, against or default)
    if isinstance(data, list) or data.ndim == 3:
        return Samples(data, _check_weights(weights, data, name, wname))
    if weights is not None:
        raise ValueError(
            f"{wname} weigh the points of clouds; the values of the histograms "
            f"{name} are their weights already."
        )
    _check_histograms(data, name, whom or "pairwise_emd")
    return Samples(data)


def cloud_list(X):
    """``X`` as a list of clouds if it is a sequence of 2-D members, else None.

    Parameters
    ----------
    X : object
        What the caller gave as samples.

    Returns
    -------
    clouds : list or None
        Its members, when it is a non-empty list, tuple or 1-D object array
        whose first member is 2-D (or whose rows differ in length).

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._samples import cloud_list
    >>> len(cloud_list([np.zeros((2, 3)), np.zeros((1, 3))]))
    2
    >>> cloud_list(np.zeros((2, 3))) is None
    True
    """
    if isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 1:
        X = list(X)
    if not isinstance(X, (list, tuple)) or not X:
        return None
    try:
        return list(X) if np.ndim(X[0]) == 2 else None
    except ValueError:  # rows of different lengths: named with the member
        return list(X)


def _check_cloud(x, label):
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{label} is not an array of real numbers.") from None
    if x.ndim != 2 or 0 in x.shape:
        raise ValueError(
            f"{label} must be a point cloud of shape (n_points, d) with at least "
            f"one point; got shape {x.shape}."
        )
    _check_finite(x[None], label, prefix=False)
    return x


def _check_finite(data, name, prefix=True):
    bad = np.argwhere(~np.isfinite(data))
    if bad.size:
        i, *position = bad[0].tolist()
        raise ValueError(
            f"{f'{name}[{i}]' if prefix else name} has a non-finite value "
            f"{data[tuple(bad[0])]} (NaN or inf) at position {tuple(position)}."
        )


def _check_like(name, shapes, like, against):
    """Refuse samples of another kind, bins or dimension than ``like``'s."""
    expected = shapes[0] if like is None else like.data[0].shape
    kind = len(shapes[0])  # 1 for histograms, 2 for clouds
    if len(expected) != kind:
        kinds = ["histograms", "point clouds"]
        raise ValueError(
            f"{name} holds {kinds[kind - 1]}, but {against} {kinds[2 - kind]}."
        )
    for i, shape in enumerate(shapes):
        if shape[-1] != expected[-1]:
            where = f"{name} has samples of" if len(shapes) == 1 else f"{name}[{i}] has"
            wanted = f"({expected[0]},)" if kind == 1 else f"(n_points, {expected[1]})"
            raise ValueError(
                f"{where} shape {shape}, but {against} samples of shape {wanted}."
            )


def _check_histograms(H, name, whom):
    """Refuse histograms with a negative bin, or a sum that is 0 or overflows."""
    negative = np.argwhere(H < 0)
    if negative.size:
        i, j = negative[0]
        raise ValueError(
            f"Negative values in data passed to {whom}: histogram {name}[{i}] has "
            f"the bin {H[i, j]} at position {j}."
        )
    with np.errstate(over="ignore"):
        mass = H.sum(axis=1)
    empty = np.flatnonzero(mass == 0)
    if empty.size:
        raise ValueError(f"{name}[{empty[0]}] is an empty histogram (all bins are 0).")
    _check_overflow(mass, name)


def _check_weights(weights, clouds, name, wname):
    """One checked vector per cloud, stacked for an array of clouds; or None."""
    if weights is None:
        return None
    if not hasattr(weights, "__len__") or len(weights) != len(clouds):
        given = len(weights) if hasattr(weights, "__len__") else repr(weights)
        raise ValueError(
            f"{wname} must hold one weight vector per cloud of {name}, "
            f"{len(clouds)}; got {given}."
        )
    checked = []
    for i, (w, x) in enumerate(zip(weights, clouds, strict=True)):
        if np.shape(w) != (len(x),):
            raise ValueError(
                f"{wname}[{i}] has shape {np.shape(w)}, but the cloud {name}[{i}] "
                f"has {len(x)} points."
            )
        checked.append(check_weight_vector(w, f"{wname}[{i}]", len(x)))
    with np.errstate(over="ignore"):
        _check_overflow(np.array([w.sum() for w in checked]), wname)
    return checked if isinstance(clouds, list) else np.stack(checked)


def _check_overflow(masses, name):
    overflow = np.flatnonzero(masses == np.inf)
    if overflow.size:
        raise ValueError(
            f"{name}[{overflow[0]}] sums to inf: its mass overflows float64; "
            "rescale it."
        )
