"""The progress bar of long computations, and what ``verbose`` means.

Every bar skemd shows is made here: one :class:`tqdm.tqdm` on standard error
counting problems (or pairs), with their rate and the time left. The engine
advances it as chunks arrive, whatever the joblib backend; ``skemd solve``
starts it at the problems an earlier run already solved.
"""

import sys

from tqdm import tqdm

# Least seconds between redraws: a bar redrawn per chunk of tiny problems
# would cost more than the problems.
_MININTERVAL = 0.2
# joblib's own messages start at this verbosity; below it, only the bar.
_JOBLIB_VERBOSE = 2

#: The numpydoc entry of ``verbose`` in the public functions and estimators.
VERBOSE_DOC = """\
verbose : int or bool, default=0
    Progress, on standard error. 0 prints nothing. 1 (or True) shows a
    progress bar (tqdm) of the problems, or pairs, solved, with their rate
    and the time left. 2 or more also passes ``verbose`` to joblib, which
    prints its own messages about finished tasks (chunks of problems): a
    summary, or every task above 10."""


def progress_bar(total, *, verbose=1, unit="problems", initial=0):
    """A progress bar over ``total`` items, shown when ``verbose`` is at least 1.

    Parameters
    ----------
    total : int
        Items to count in all, including ``initial``.
    verbose : int or bool, default=1
        0 or False disables the bar: it prints nothing.
    unit : str, default="problems"
        What is counted, as the rate shows it ("problems/s").
    initial : int, default=0
        Items already done, by an earlier run: the bar starts there, and the
        rate and the time left count only this run's work.

    Returns
    -------
    bar : tqdm.tqdm
        The bar, writing to ``sys.stderr``; advance it with ``bar.update(n)``
        and end it with ``bar.close()``, or use it as a context manager.

    Examples
    --------
    >>> import contextlib, io
    >>> from skemd._progress import progress_bar
    >>> stream = io.StringIO()
    >>> with contextlib.redirect_stderr(stream):
    ...     with progress_bar(100, initial=40) as bar:
    ...         bar.update(60)
    >>> last = stream.getvalue().split("\\r")[-1]
    >>> last.startswith("100%"), "100/100" in last, "problems/s" in last
    (True, True, True)
    >>> with progress_bar(100, verbose=0) as bar:  # prints nothing
    ...     bar.update(100)
    """
    return tqdm(
        total=total,
        initial=initial,
        unit=unit,
        file=sys.stderr,
        disable=not verbose,
        mininterval=_MININTERVAL,
        miniters=1,
        # The mean rate of this run, as chunks arrive in bursts.
        smoothing=0,
    )


def joblib_verbosity(verbose):
    """The ``verbose`` to pass to joblib: skemd's from 2 on, else none.

    Parameters
    ----------
    verbose : int or bool
        skemd's verbosity: 1 shows only the bar, 2 and more also joblib's
        messages about finished tasks (every task above 10).

    Returns
    -------
    verbose : int
        joblib's verbosity.

    Examples
    --------
    >>> from skemd._progress import joblib_verbosity
    >>> joblib_verbosity(True), joblib_verbosity(1), joblib_verbosity(11)
    (0, 0, 11)
    """
    return int(verbose) if verbose >= _JOBLIB_VERBOSE else 0
