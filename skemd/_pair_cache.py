"""The pair cache: solved pair distances, in one sqlite3 file shared by all fits.

This module owns the store behind ``PairwiseEMDTransformer(memory=...)``,
``<memory>/skemd_pairs.sqlite3``. A row is keyed by a **configuration key**
(ground space, method, parameters, symmetry) and a **pair key** (the samples'
digests of dtype, shape and bytes; sorted when symmetric) and holds a
**checksum**. A mismatch, or a file sqlite finds malformed, marks the store
corrupt: it is named in a warning, moved aside and replaced; none of its
values is used. Writes are WAL transactions (concurrent processes; a killed
one leaves the last commit); lookups query the store in batches after a
bounded memo of this process's recent pairs; the least recently used rows
past :data:`MAX_ENTRIES` are evicted. Nothing read is unpickled. The file's
schema and setup are :mod:`skemd._pair_store`'s.
"""

import hashlib
import json
import os
import sqlite3
import struct
import time
from contextlib import closing, suppress
from pathlib import Path

import numpy as np

from ._pair_store import (
    BUSY_TIMEOUT,
    SCHEMA_VERSION,
    Corrupt,
    is_corrupt,
    is_locked,
    set_up,
)
from ._warnings import PairCacheWarning, warn_user

#: The store's file name, inside the ``memory`` directory.
FILENAME = "skemd_pairs.sqlite3"
#: The most pairs kept; past it, the least recently used are evicted.
MAX_ENTRIES = 10_000_000
#: Keys per lookup query (sqlite allows at least 999 parameters per statement).
BATCH = 500
#: Rows per write transaction (other writers wait for it).
WRITE_BATCH = 20_000
#: A hit on a row used less than this long ago (ns) is not recorded again.
FRESH = 60 * 10**9
#: Pairs this process has checked or written, kept for repeated lookups.
RECENT_ENTRIES = 100_000
_RECENT = {}  # (store path, config) -> {pair key: distance}, oldest first
_KEY_BYTES = 16
_INSERT = (
    "INSERT INTO pairs VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (config, pair) DO UPDATE SET used = excluded.used"
)
_TOUCH = "UPDATE pairs SET used = ?3 WHERE config = ?1 AND pair = ?2"


def store_path(memory):
    """Return ``<memory>/skemd_pairs.sqlite3``, or None when caching is off.

    ``memory`` is a directory (str or path-like), a ``joblib.Memory`` whose
    ``location`` is one, or None (as is a Memory without a location).

    Raises
    ------
    ValueError
        If the directory, or a parent of it, is a file, or the store's path
        is taken by something that is not a file.
    """
    location = getattr(memory, "location", memory)
    if location is None:
        return None
    directory = Path(os.fspath(location))
    for folder in (directory, *directory.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ValueError(
                    f"memory={os.fspath(location)!r} must be a directory for the "
                    f"pair cache, but {str(folder)!r} is a file."
                )
            break
    path = directory / FILENAME
    if path.exists() and not path.is_file():
        raise ValueError(
            f"memory={os.fspath(location)!r}: the pair cache's path {str(path)!r} "
            "is taken by something that is not a file."
        )
    return path


def sample_keys(X, weights=None):
    """Return a content digest (bytes) per sample: dtype, shape, bytes, weights.

    Parameters
    ----------
    X : ndarray or list of ndarray
        The samples: an array of them, or a list of arrays of any shapes.
    weights : ndarray or list of ndarray, default=None
        One weight vector per sample, digested with it.

    Returns
    -------
    keys : list of bytes
        One key per sample; equal samples (and weights) have equal keys.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._pair_cache import sample_keys
    >>> keys = sample_keys(np.array([[0.5, 0.5], [1.0, 0.0], [0.5, 0.5]]))
    >>> keys[0] == keys[2], keys[0] == keys[1]
    (True, False)
    >>> sample_keys(np.zeros((1, 4, 2)))[0] == sample_keys(np.zeros((1, 2, 4)))[0]
    False
    >>> sample_keys([np.zeros((2, 1))], [[1, 2]]) == sample_keys([np.zeros((2, 1))])
    False
    """
    keys = []
    for i, x in enumerate(X if isinstance(X, list) else np.ascontiguousarray(X)):
        x = np.ascontiguousarray(x)
        # The header fixes the length of the bytes after it: weights follow.
        parts = [json.dumps([x.dtype.str, list(x.shape)]).encode(), x.tobytes()]
        if weights is not None:
            parts.append(np.ascontiguousarray(weights[i], dtype=np.float64).tobytes())
        keys.append(_digest(*parts))
    return keys


def config_key(description, **arrays):
    """Return the digest of a configuration: a JSON-able description and arrays.

    Parameters
    ----------
    description : dict
        What decides the values besides the arrays, such as
        ``SolverOptions.identity``; dumped as JSON with sorted keys.
    **arrays : ndarray or None
        Arrays that decide the values (a cost matrix, bin positions), each
        digested with its dtype and shape; None counts as empty.

    Returns
    -------
    key : bytes
        The configuration key.

    Raises
    ------
    ValueError
        Naming a value of ``description`` that has no JSON form.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._pair_cache import config_key
    >>> key = config_key({"method": "exact"}, cost=np.eye(2))
    >>> key == config_key({"method": "exact"}, cost=np.eye(2).astype(np.float32))
    False
    >>> config_key({"reg": np.float64(0.1)}) == config_key({"reg": 0.1})
    True
    """
    text = json.dumps([SCHEMA_VERSION, description], sort_keys=True, default=_item)
    parts = [text.encode()]
    for name, array in sorted(arrays.items()):
        array = np.ascontiguousarray([] if array is None else array)
        parts += [json.dumps([name, array.dtype.str, array.shape]).encode()]
        parts.append(array.tobytes())
    return _digest(*parts)


class PairCache:
    """The distances of solved pairs under one configuration, in a store file.

    Parameters
    ----------
    path : pathlib.Path
        The store file, from :func:`store_path`.
    config : bytes
        The configuration key, from :func:`config_key`.
    symmetric : bool
        Whether ``d(x, y) == d(y, x)``: a pair and its mirror then share a key.
    """

    def __init__(self, path, config, symmetric):
        self.path = Path(path)
        self.config = config
        self.symmetric = symmetric
        self._inode = None

    def lookup(self, left_keys, right_keys, pairs):
        """Return the stored distance of each pair, NaN where unknown.

        Parameters
        ----------
        left_keys, right_keys : list of bytes
            The samples' keys, from :func:`sample_keys`.
        pairs : ndarray of shape (n_pairs, 2)
            Indices into the two lists.

        Returns
        -------
        distance : ndarray of shape (n_pairs,)
            Stored distances, NaN for the pairs not stored.
        """
        keys = self._pair_keys(left_keys, right_keys, pairs)
        recent = _RECENT.get((self.path, self.config), {})
        distance = np.array([recent.get(key, np.nan) for key in keys])
        todo = np.flatnonzero(np.isnan(distance))

        def read(db):
            used = []
            for start in range(0, todo.size, BATCH):
                rows = todo[start : start + BATCH]
                found = self._select(db, [keys[i] for i in rows], used)
                distance[rows] = [found.get(keys[i], np.nan) for i in rows]
                self._remember(found)
                if len(used) >= WRITE_BATCH or start + BATCH >= todo.size:
                    now = time.time_ns()
                    self._write(db, _TOUCH, [(self.config, k, now) for k in used])
                    used.clear()

        if todo.size:
            self._run(read, None)
        return distance

    def store(self, left_keys, right_keys, pairs, values):
        """Store the pairs' finite ``values``, evicting past :data:`MAX_ENTRIES`.

        ``left_keys``, ``right_keys`` and ``pairs`` are as in :meth:`lookup`.
        """
        keep = np.flatnonzero(np.isfinite(values))

        def write(db):
            for start in range(0, keep.size, WRITE_BATCH):
                rows = keep[start : start + WRITE_BATCH]
                keys = self._pair_keys(left_keys, right_keys, pairs[rows])
                self._write(db, _INSERT, [*map(self._row, keys, values[rows].tolist())])
                self._remember(dict(zip(keys, values[rows].tolist(), strict=True)))

        if keep.size:
            self._run(write, None)

    def _remember(self, found):
        """Keep checked or stored values in memory, up to :data:`RECENT_ENTRIES`."""
        _RECENT.setdefault((self.path, self.config), {}).update(found)
        while sum(map(len, _RECENT.values())) > RECENT_ENTRIES:
            oldest = next(iter(_RECENT.values()))
            for key in list(oldest)[: max(1, len(oldest) // 2)]:
                del oldest[key]
            if not oldest:
                del _RECENT[next(iter(_RECENT))]

    def _row(self, key, value):
        checksum = _checksum(self.config, key, value)
        return self.config, key, value, checksum, time.time_ns()

    def _pair_keys(self, left_keys, right_keys, pairs):
        size = f"S{_KEY_BYTES}"
        keys = np.empty((len(pairs), 2), dtype=size)
        keys[:, 0] = np.asarray(left_keys, dtype=size)[pairs[:, 0]]
        keys[:, 1] = np.asarray(right_keys, dtype=size)[pairs[:, 1]]
        if self.symmetric:
            keys.sort(axis=1)
        return keys.view(f"S{2 * _KEY_BYTES}").ravel().tolist()

    def _select(self, db, keys, used):
        """The checked ``{pair key: distance}`` of the stored ``keys``.

        Appends to ``used`` the keys found whose last use is older than
        :data:`FRESH`, to be marked used.
        """
        rows = db.execute(
            "SELECT pair, value, checksum, used FROM pairs WHERE config = ? AND "
            f"pair IN ({', '.join('?' * len(keys))})",
            [self.config, *keys],
        ).fetchall()
        found, stale = {}, time.time_ns() - FRESH
        for pair, value, checksum, last in rows:
            if not isinstance(pair, bytes) or not isinstance(value, float):
                raise Corrupt("a stored row has the wrong types")
            if checksum != _checksum(self.config, pair, value):
                raise Corrupt("a stored distance does not match its checksum")
            found[pair] = value
            if not isinstance(last, int) or last < stale:
                used.append(pair)
        return found

    def _write(self, db, statement, rows):
        """Run ``statement`` on ``rows`` in one transaction, then evict."""
        if not rows:
            return
        rows.sort(key=lambda row: row[1])  # in key order: fewer pages touched
        db.execute("BEGIN IMMEDIATE")
        db.executemany(statement, rows)
        (entries,) = db.execute("SELECT entries FROM size").fetchone() or (None,)
        if not isinstance(entries, int):
            raise Corrupt("its size table was altered")
        if entries > MAX_ENTRIES:
            db.execute(
                "DELETE FROM pairs WHERE (config, pair) IN "
                "(SELECT config, pair FROM pairs ORDER BY used LIMIT ?)",
                (entries - MAX_ENTRIES,),
            )
        db.execute("COMMIT")

    def _run(self, operation, fallback):
        """``operation(db)`` on a fresh connection, or ``fallback`` with a warning.

        A corrupt store is moved aside and the operation rerun on a new one;
        other failures but a lock held past :data:`~skemd._pair_store.BUSY_TIMEOUT`
        are retried once (the store may have been deleted or replaced meanwhile).
        """
        problem = None
        for _ in range(2):
            try:
                with closing(self._connect()) as db:
                    return operation(db)
            except (Corrupt, sqlite3.DatabaseError, OSError) as error:
                problem = error
            if is_corrupt(problem):
                if not self._move_aside(problem):
                    return fallback
                problem = None
            elif is_locked(problem):
                break
        if problem is not None:
            warn_user(
                f"The pair cache {str(self.path)!r} could not be used ({problem}); "
                "its pairs are solved without it.",
                PairCacheWarning,
            )
        return fallback

    def _connect(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            self._inode = os.stat(self.path).st_ino  # connect created the file
            set_up(db)
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self, error):
        """Move the corrupt store aside and warn; False if it cannot be moved."""
        aside = f"{self.path}.corrupt"
        try:
            if os.stat(self.path).st_ino != self._inode:
                return True  # another process has replaced it already
            for suffix in ("", "-wal", "-shm"):
                with suppress(FileNotFoundError):
                    os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
            then = f"It was moved to {aside!r} and a new, empty cache started."
        except FileNotFoundError:
            return True  # another process has moved it already
        except OSError as failure:
            then, aside = f"It could not be moved ({failure}): delete it.", None
        warn_user(
            f"The pair cache {str(self.path)!r} is corrupt ({error}); none of its "
            f"values were used. {then}",
            PairCacheWarning,
        )
        return aside is not None


def _checksum(config, pair, value):
    return _digest(config, pair, struct.pack("<d", value))[:8]


def _digest(*parts):
    digest = hashlib.blake2b(digest_size=_KEY_BYTES)
    for part in parts:
        digest.update(part)
    return digest.digest()


def _item(value):
    if isinstance(value, np.generic):
        return value.item()
    raise ValueError(f"The pair cache cannot key {value!r}: it has no JSON form.")
