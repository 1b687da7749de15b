"""Warnings that point at the user's line, not into skemd or its hosts.

Python files a warning under the line that ``stacklevel`` names and shows it
once per line, so a warning that pointed into skemd would merge every call
site of the user's. The line named here is the first one outside skemd,
scikit-learn (whose wrappers, such as ``set_output``'s, and meta-estimators
call ours) and joblib (through which scikit-learn runs them). It also holds
skemd's own warning categories, the one warning about failed problems, and
the block that merges a call's warnings into one per category.
"""

import contextvars
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
# The OneWarningPerCategory block that gathers this thread's warnings, if any.
_GATHERING = contextvars.ContextVar("skemd_gathering", default=None)


def warn_user(message, category):
    """Emit a warning attributed to the innermost caller outside skemd.

    Python 3.12's ``skip_file_prefixes`` does the same; skemd supports 3.10.
    Within a :class:`OneWarningPerCategory` block, the warning waits for the
    block's end.

    Parameters
    ----------
    message : str
        The warning's text.
    category : type of Warning
        Its class.

    Examples
    --------
    >>> import warnings
    >>> from skemd._warnings import warn_user
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_user("Something to know.", UserWarning)
    >>> caught[0].filename.startswith("<doctest")  # this line, not skemd's
    True
    """
    gathering = _GATHERING.get()
    if gathering is not None:
        gathering.others.setdefault(category, [message, 0])[1] += 1
        return
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
    ``max_iter`` reached) and adds the method's advice. Within a
    :class:`OneWarningPerCategory` block, the failures are gathered instead,
    for one warning at the block's end.

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

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from skemd._options import SolverOptions
    >>> from skemd._warnings import warn_failures
    >>> converged, finite = np.array([True, False, True]), np.ones(3, dtype=bool)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     options = SolverOptions.build(max_iter=5)
    ...     warn_failures(converged, finite, options, lambda i: np.zeros((2, 2)))
    >>> print(caught[0].message)
    1 of 3 problems did not converge within max_iter=5 (indices 1). Increase
    max_iter. Their results are flagged in `converged`.
    """
    gathering = _GATHERING.get()
    failures = _Failures() if gathering is None else gathering.failures
    failures.add(converged, finite, options, costs, pairs)
    if gathering is None and failures.names:
        warn_user(failures.message(), ConvergenceWarning)


class OneWarningPerCategory:
    """A ``with`` block whose skemd warnings come out once per category, at its end.

    A call that solves pairs in many rounds (a neighbour search) would warn
    about the failures of each round. In the block, :func:`warn_failures`
    gathers them, and :func:`warn_user` keeps the first message of each other
    category. When the block ends, one ConvergenceWarning names the first
    problems that failed in any round and counts them all (unless an error
    ends it), then each other category warns once, pointing at the user's
    line. In a nested block, the outermost one warns.

    Examples
    --------
    >>> import warnings
    >>> from skemd._warnings import OneWarningPerCategory, warn_user
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     with OneWarningPerCategory():
    ...         for attempt in range(3):
    ...             warn_user(f"Attempt {attempt} failed.", RuntimeWarning)
    >>> [str(warning.message) for warning in caught]
    ['Attempt 0 failed. (2 more RuntimeWarning in this call.)']
    """

    def __enter__(self):
        self._outer = _GATHERING.get() is not None
        if not self._outer:
            self.failures, self.others = _Failures(), {}
            self._token = _GATHERING.set(self)
        return self

    def __exit__(self, kind, error, traceback):
        if self._outer:
            return
        _GATHERING.reset(self._token)
        # Failures are moot if the call fails; other news (a cache file moved
        # aside, say) still stands.
        if kind is None and self.failures.names:
            warn_user(self.failures.message(), ConvergenceWarning)
        for category, (message, count) in self.others.items():
            more = f" ({count - 1} more {category.__name__} in this call.)"
            warn_user(message + more * (count > 1), category)


class _Failures:
    """The failed problems of one or more solves: their names, causes and costs."""

    def __init__(self):
        self.k, self.options, self.pairs = 0, None, None
        self.names, self.finite, self.sources = [], [], []

    def add(self, converged, finite, options, costs, pairs):
        failed = np.flatnonzero(~converged)
        if self.pairs is None:
            self.pairs = pairs is not None
        if failed.size:
            self.options = options if self.options is None else self.options
            self.names.append(failed + self.k if pairs is None else pairs[failed])
            self.finite.append(finite[failed])
            self.sources.append((costs, failed))
        self.k += converged.size

    def message(self):
        names, finite = np.concatenate(self.names), np.concatenate(self.finite)
        sources = [(costs, i) for costs, failed in self.sources for i in failed]
        options, k = self.options, self.k
        max_iter = options.get("max_iter")
        within = "" if max_iter is None else f" within max_iter={max_iter}"
        kind = "pairs of samples" if self.pairs else "problems"
        messages = []
        for which, what in (
            (np.flatnonzero(~finite), "have a non-finite cost"),
            (np.flatnonzero(finite), "did not converge" + within),
        ):
            if which.size:
                shown = which[:_SHOWN_FAILURES]
                advice = options.spec.advise(
                    options, [costs(i) for costs, i in (sources[n] for n in shown)]
                )
                listed = _names(names[shown], self.pairs, which.size)
                messages.append(
                    f"{which.size} of {k} {kind} {what} ({listed}). {advice}"
                )
        if not self.pairs:
            messages.append("Their results are flagged in `converged`.")
        return " ".join(messages)


def _names(shown, pairs, count):
    if pairs:
        names = ", ".join(f"({i}, {j})" for i, j in shown.tolist())
    else:
        names = "indices " + ", ".join(map(str, shown))
    return names + (", ..." if count > _SHOWN_FAILURES else "")
