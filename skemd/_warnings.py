"""Warnings that point at the user's line, not into skemd or its hosts.

Python files a warning under the line that ``stacklevel`` names and shows it
once per line, so a warning that pointed into skemd would merge every call
site of the user's. The line named here is the first one outside skemd,
scikit-learn (whose wrappers, such as ``set_output``'s, and meta-estimators
call ours) and joblib (through which scikit-learn runs them). It also holds
skemd's own warning categories, and the one warning about failed problems.
"""

import os
import sys
import warnings
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning

_INTERNAL = tuple(
    os.path.join(Path(module).resolve().parent, "")
    for module in (__file__, sklearn.__file__, joblib.__file__)
)


def warn_user(message, category):
    """Emit a warning attributed to the innermost caller outside skemd.

    Python 3.12's ``skip_file_prefixes`` does the same; skemd supports 3.10.

    Parameters
    ----------
    message : str
        The warning's text.
    category : type of Warning
        Its class.
    """
    frame, level = sys._getframe(0), 1
    while frame.f_back is not None and _is_internal(frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def _is_internal(filename):
    return str(Path(filename).resolve()).startswith(_INTERNAL)


class PairCacheWarning(RuntimeWarning):
    """The pair cache was corrupt (and rebuilt) or could not be used.

    The fit goes on and its values are right: they are solved, never read
    from a damaged store. Filter it like any warning.

    Examples
    --------
    >>> import warnings
    >>> from skemd import PairCacheWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", PairCacheWarning)
    ...     warnings.warn("store skipped", PairCacheWarning)
    >>> issubclass(PairCacheWarning, RuntimeWarning)
    True
    """


# How many failing problem indices a ConvergenceWarning lists.
_SHOWN_FAILURES = 10


def warn_failures(converged, finite, options, costs, pairs=None):
    """Warn once, with a ConvergenceWarning, about the problems that failed.

    The message names the first of them, says why (a non-finite cost, or
    ``max_iter`` reached) and adds the method's advice.

    Parameters
    ----------
    converged : ndarray of shape (k,), dtype=bool
        The problems' flags.
    finite : ndarray of shape (k,), dtype=bool
        Whether each problem's cost is finite.
    options : SolverOptions
        The options they were solved with.
    costs : callable
        ``costs(i)`` gives the cost matrix of problem ``i``, for the advice.
    pairs : ndarray of shape (k, 2), default=None
        When the problems are pairs of samples, the pairs: the message then
        names them, as ``(i, j)``.
    """
    failed = ~converged
    if not failed.any():
        return
    k = converged.size
    overflow = np.flatnonzero(failed & ~finite)
    slow = np.flatnonzero(failed & finite)
    max_iter = options.get("max_iter")
    within = "" if max_iter is None else f" within max_iter={max_iter}"
    messages = []
    for which, what in (
        (overflow, "have a non-finite cost"),
        (slow, "did not converge" + within),
    ):
        if which.size:
            advice = options.spec.advise(
                options, [costs(i) for i in which[:_SHOWN_FAILURES]]
            )
            kind = "problems" if pairs is None else "pairs of samples"
            messages.append(
                f"{which.size} of {k} {kind} {what} ({_names(which, pairs)}). {advice}"
            )
    if pairs is None:
        messages.append("Their results are flagged in `converged`.")
    warn_user(" ".join(messages), ConvergenceWarning)


def _names(which, pairs):
    shown = which[:_SHOWN_FAILURES]
    if pairs is None:
        names = "indices " + ", ".join(map(str, shown))
    else:
        names = ", ".join(f"({i}, {j})" for i, j in pairs[shown].tolist())
    return names + (", ..." if which.size > _SHOWN_FAILURES else "")
