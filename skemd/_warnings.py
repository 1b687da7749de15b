"""Warnings that point at the user's line, not into skemd or its hosts.

Python files a warning under the line that ``stacklevel`` names and shows it
once per line, so a warning that pointed into skemd would merge every call
site of the user's. The line named here is the first one outside skemd,
scikit-learn (whose wrappers, such as ``set_output``'s, and meta-estimators
call ours) and joblib (through which scikit-learn runs them). It also holds
skemd's own warning categories.
"""

import os
import sys
import warnings
from pathlib import Path

import joblib
import sklearn

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
