"""An on-disk store of solved pairs, shared by every fit that uses it.

Pairs are keyed by the content of their two samples (a digest of each
normalised sample), under a directory named after everything else that
decides the distance (ground space, method, reg, tol, max_iter). So the folds
and candidates of a grid search, which refit clones on overlapping subsets,
solve each distinct pair once. Each write is a new shard file, so concurrent
writers never clash.
"""

import hashlib
import uuid
from pathlib import Path

import joblib
import numpy as np

_KEY_BYTES = 16

# Per process: for each store directory, the shards already read and the
# distances they hold, so a lookup reads only the shards written since.
_READ = {}


def sample_keys(X):
    """Return a hex content digest per sample (row of ``X``).

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._pair_cache import sample_keys
    >>> keys = sample_keys(np.array([[0.5, 0.5], [1.0, 0.0], [0.5, 0.5]]))
    >>> bool(keys[0] == keys[2]), bool(keys[0] == keys[1])
    (True, False)
    """
    X = np.ascontiguousarray(X, dtype=np.float64).reshape(len(X), -1)
    return np.array(
        [
            hashlib.blake2b(row.tobytes(), digest_size=_KEY_BYTES).hexdigest()
            for row in X
        ]
    )


class PairCache:
    """Distances of solved pairs under ``memory`` for one configuration.

    Parameters
    ----------
    memory : str, pathlib.Path, joblib.Memory or None
        Where to store; None (or a Memory without location) disables it.
    config : object
        Everything besides the two samples that decides a distance; hashed
        with :func:`joblib.hash`.
    symmetric : bool
        Whether ``d(x, y) == d(y, x)``, so a pair and its mirror share a key.
    """

    def __init__(self, memory, config, symmetric):
        location = getattr(memory, "location", memory)
        self.directory = None
        if location is not None:
            self.directory = Path(location) / "skemd_pairs" / joblib.hash(config)
        self.symmetric = symmetric

    def pair_keys(self, left_keys, right_keys):
        """Return one key per pair from the two samples' keys."""
        if self.symmetric:
            swap = right_keys < left_keys
            left_keys, right_keys = (
                np.where(swap, right_keys, left_keys),
                np.where(swap, left_keys, right_keys),
            )
        return np.char.add(left_keys, right_keys)

    def lookup(self, keys):
        """Return the stored distance of each key, NaN where unknown."""
        if self.directory is None:
            return np.full(len(keys), np.nan)
        known = self._known()
        return np.array([known.get(key, np.nan) for key in keys.tolist()], dtype=float)

    def _known(self):
        read, known = _READ.setdefault(self.directory, (set(), {}))
        if self.directory.exists():
            for shard in self.directory.glob("*.npz"):
                if shard.name not in read:
                    with np.load(shard) as data:
                        known.update(
                            zip(
                                data["keys"].tolist(),
                                data["values"].tolist(),
                                strict=True,
                            )
                        )
                    read.add(shard.name)
        return known

    def store(self, keys, values):
        """Add solved pairs as a new shard."""
        if self.directory is None or len(keys) == 0:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{uuid.uuid4().hex}.npz"
        np.savez(path, keys=np.asarray(keys), values=np.asarray(values, np.float64))
        read, known = _READ.setdefault(self.directory, (set(), {}))
        known.update(
            zip(np.asarray(keys).tolist(), np.asarray(values).tolist(), strict=True)
        )
        read.add(path.name)
