"""What a CLI run keeps on disk: its lock, its checkpoint and its checked output.

A run of ``skemd solve -o OUT.npz`` owns, beside ``OUT.npz``:

- ``OUT.npz.lock``, locked with ``fcntl.flock`` for the whole run, so that
  two runs never write the same output (the OS releases the lock if the
  process dies);
- ``OUT.npz.partial/``: a manifest of what is being solved (the run's
  identity, by content) and one ``.npz`` per finished chunk.

Every file is written under a temporary name and renamed into place, and
carries a checksum bound to the run: a chunk holds its row range and a
SHA-256 of its arrays, the output holds the manifest and a SHA-256 of all of
its arrays. Everything read back is verified; a chunk or an output that is
unreadable, holds other rows or fails its checksum is named in a one-line
warning and solved again, never served. Nothing read is ever unpickled.
"""

import contextlib
import hashlib
import json
import os
import shutil
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
from scipy import sparse

_MANIFEST = "manifest.json"
_CSR_PARTS = ("data", "indices", "indptr")
# What reading a damaged or foreign .npz may raise (never anything unpickled).
_UNREADABLE = (OSError, ValueError, EOFError, KeyError, NotImplementedError)
_UNREADABLE += (struct.error, zipfile.BadZipFile, zlib.error)


class CorruptCheckpoint(Exception):
    """A saved chunk that cannot be used; the message names its file."""


class OutputBusy(Exception):
    """Another process holds the lock on the output."""


class Checkpoint:
    """The chunks of one run, saved in ``<output>.partial/``.

    Parameters
    ----------
    output : str or Path
        The final ``.npz`` output.
    manifest : dict
        JSON-able identity of the run (inputs, options, chunks). A checkpoint
        or an output whose manifest differs belongs to another run: it is
        discarded, never mixed in. Saving and joining read its ``"chunks"``
        (a list of ``[start, stop]``), ``"plans"`` (None, "dense" or
        "sparse") and ``"shape"`` (``[k, n, m]``, needed with sparse plans).
    warn : callable, default=None
        ``warn(message)`` is told of each bad file found (one line, naming
        it) before it is discarded; None prints to standard error.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from skemd._checkpoint import Checkpoint
    >>> out = os.path.join(tempfile.mkdtemp(), "out.npz")
    >>> run = Checkpoint(out, {"chunks": [[0, 2], [2, 3]]})
    >>> run.done()
    []
    >>> run.open()
    >>> run.save(0, 2, distance=np.array([1.0, 2.0]), converged=np.ones(2, bool))
    >>> run.saved(slice(0, 2)), run.saved(slice(2, 3))
    (True, False)
    >>> Checkpoint(out, {"chunks": [[0, 2], [2, 3]]}).done()
    [(0, 2)]
    >>> run.save(2, 3, distance=np.array([3.0]), converged=np.ones(1, bool))
    >>> run.finish().tolist(), run.completed()
    ([True, True, True], True)

    A chunk that does not hold what its name says is found and discarded:

    >>> found = []
    >>> other = Checkpoint(out, {"chunks": [[0, 2]]}, warn=found.append)
    >>> other.open()
    >>> other.save(0, 2, distance=np.array([1.0]), converged=np.ones(1, bool))
    >>> other.done(), os.path.basename(found[0])
    ([], 'chunk-0-2.npz holds distance of shape (1,), not (2,); solving them again')
    """

    def __init__(self, output, manifest, warn=None):
        self.output = Path(output)
        self.directory = Path(f"{output}.partial")
        self.manifest = json.loads(json.dumps(manifest))
        self._identity = json.dumps(self.manifest)
        self._salt = hashlib.sha256(self._identity.encode()).digest()
        self._warn = warn

    def completed(self):
        """Whether ``output`` holds this run's results, with a valid checksum.

        An output of another run is silently replaced; an unreadable one,
        or one of this run that fails its checks, is reported and redone.
        """
        if not self.output.is_file():
            return False
        try:
            with _open_npz(self.output) as stored:
                ours = "run" in stored.files and str(stored["run"]) == self._identity
                if not ours:
                    return False
                problem = self._output_problem(stored)
        except (*_UNREADABLE, CorruptCheckpoint) as error:
            self._report(
                f"{self.output} is unreadable ({_reason(error)}); it will be replaced"
            )
            return False
        if problem:
            self._report(f"{self.output} {problem}; solving this run again")
        return not problem

    def remove_leftovers(self):
        """Remove a checkpoint of this run that a kill left after the output was
        written; return whether there was one."""
        if self._stored_manifest() != self.manifest:
            return False
        shutil.rmtree(self.directory, ignore_errors=True)
        return True

    def done(self):
        """The verified ``(start, stop)`` chunks this run has saved.

        A chunk file that is unreadable, holds other rows or fails its
        checksum is reported, deleted and left out, so that it is solved
        again. None of another run's chunks is ever returned.
        """
        if self._stored_manifest() != self.manifest:
            return []
        done = []
        for start, stop in self._bounds():
            if not self._chunk(start, stop).exists():
                continue
            try:
                self._verified(start, stop)
            except CorruptCheckpoint as error:
                self._report(f"{error}; solving them again")
                continue
            done.append((start, stop))
        return done

    def open(self):
        """Make the checkpoint this run's, discarding another run's."""
        if self._stored_manifest() != self.manifest:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory.mkdir(parents=True)
            tmp = self.directory / f".{_MANIFEST}.tmp"
            tmp.write_text(self._identity)
            os.replace(tmp, self.directory / _MANIFEST)

    def save(self, start, stop, **arrays):
        """Save one finished chunk's arrays, with its rows and checksum."""
        arrays["rows"] = np.array([start, stop], dtype=np.int64)
        arrays["checksum"] = np.array(_checksum(sorted(arrays.items()), self._salt))
        _savez(self._chunk(start, stop), arrays)

    def save_result(self, rows, result):
        """Save a chunk's :class:`~skemd.EMDResult`, from the worker that solved it.

        A worker on another machine, which does not see the checkpoint's
        directory, saves nothing; :meth:`saved` then tells the caller to.
        """
        if not self.directory.is_dir():
            return
        arrays = {"distance": result.distance, "converged": result.converged}
        plans = self.manifest.get("plans")
        if plans == "dense":
            arrays["plan"] = result.plan
        elif plans == "sparse":
            arrays |= {key: getattr(result.plan, key) for key in _CSR_PARTS}
        self.save(rows.start, rows.stop, **arrays)

    def saved(self, rows):
        """Whether the chunk ``rows`` (a slice) is saved."""
        return self._chunk(rows.start, rows.stop).exists()

    def finish(self):
        """Join the verified chunks into ``output`` and remove the checkpoint.

        Returns
        -------
        converged : ndarray of bool
            The convergence flags of all problems.

        Raises
        ------
        CorruptCheckpoint
            If a chunk is missing or fails its checks; it is deleted first,
            so that the next run solves it again.
        """
        chunks = [self._verified(start, stop) for start, stop in self._bounds()]
        plans = self.manifest.get("plans")
        result = {
            "distance": np.concatenate([c["distance"] for c in chunks]),
            "converged": np.concatenate([c["converged"] for c in chunks]),
            "run": np.array(self._identity),
        }
        if plans == "dense":
            result["plan"] = np.concatenate([c["plan"] for c in chunks])
        elif plans == "sparse":
            _, n, m = self.manifest["shape"]
            joined = sparse.vstack([_csr(c, n * m) for c in chunks], format="csr")
            result |= {
                "plan_data": joined.data,
                "plan_indices": joined.indices,
                "plan_indptr": joined.indptr,
                "plan_shape": np.array(joined.shape),
            }
        del chunks
        result["checksum"] = np.array(_checksum(sorted(result.items()), self._salt))
        _savez(self.output, result)
        shutil.rmtree(self.directory)
        return result["converged"]

    def _bounds(self):
        return [(int(start), int(stop)) for start, stop in self.manifest["chunks"]]

    def _stored_manifest(self):
        try:
            return json.loads((self.directory / _MANIFEST).read_text())
        except (OSError, ValueError):
            return None

    def _chunk(self, start, stop):
        return self.directory / f"chunk-{start}-{stop}.npz"

    def _verified(self, start, stop):
        """The arrays of a saved chunk; a bad one is deleted and raised."""
        path = self._chunk(start, stop)
        try:
            with _open_npz(path) as stored:
                arrays = {name: stored[name] for name in stored.files}
            problem = self._chunk_problem(arrays, start, stop)
        except FileNotFoundError:
            raise CorruptCheckpoint(f"{path} is missing") from None
        except (*_UNREADABLE, CorruptCheckpoint) as error:
            problem = f"is unreadable ({_reason(error)})"
        if problem:
            path.unlink(missing_ok=True)
            raise CorruptCheckpoint(f"{path} {problem}")
        return arrays

    def _chunk_problem(self, arrays, start, stop):
        rows = arrays["rows"].tolist() if "rows" in arrays else None
        if rows != [start, stop]:
            return f"holds rows {rows}, not [{start}, {stop}]"
        names = {"rows", "checksum", "distance", "converged", *self._plan_names()}
        return self._problem(arrays, names, stop - start)

    def _output_problem(self, stored):
        plans = {
            "dense": ("plan",),
            "sparse": tuple(f"plan_{part}" for part in (*_CSR_PARTS, "shape")),
        }.get(self.manifest.get("plans"), ())
        names = {"run", "checksum", "distance", "converged", *plans}
        k = self._bounds()[-1][1] if self._bounds() else 0
        return self._problem(stored, names, k)

    def _problem(self, stored, names, rows):
        """What is wrong with ``stored`` (a dict or an open .npz), or None."""
        found = set(getattr(stored, "files", stored))
        if found != names:
            return f"holds {', '.join(sorted(found))}, not {', '.join(sorted(names))}"
        for name in ("distance", "converged"):  # cheap checks first
            if stored[name].shape != (rows,):
                return f"holds {name} of shape {stored[name].shape}, not ({rows},)"
        parts = ((name, stored[name]) for name in sorted(names - {"checksum"}))
        if str(stored["checksum"]) != _checksum(parts, self._salt):
            return "fails its checksum"
        return None

    def _plan_names(self):
        plans = self.manifest.get("plans")
        return {"dense": ("plan",), "sparse": _CSR_PARTS}.get(plans, ())

    def _report(self, message):
        if self._warn is None:
            print(f"warning: {message}", file=sys.stderr)
        else:
            self._warn(message)


@contextlib.contextmanager
def locked(output):
    """Hold an exclusive lock on ``output`` (on ``<output>.lock``) for the block.

    The lock is ``fcntl.flock`` on a file beside the output, so the OS drops
    it when the process dies however it dies; the file is removed on leaving
    the block. Where ``fcntl`` does not exist, no lock is taken.

    Raises
    ------
    OutputBusy
        At once (never waiting) if another process holds the lock.

    Examples
    --------
    >>> import tempfile, os
    >>> from skemd._checkpoint import locked, OutputBusy
    >>> out = os.path.join(tempfile.mkdtemp(), "out.npz")
    >>> with locked(out) as lock:
    ...     print(os.path.basename(lock))
    ...     with locked(out):
    ...         pass
    Traceback (most recent call last):
    ...
    skemd._checkpoint.OutputBusy: another skemd solve (pid ...) is writing ...
    >>> os.path.exists(lock)
    False
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield None
        return
    path = Path(f"{output}.lock")
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise OutputBusy(
                f"another skemd solve (pid {holder}) is writing {output}; wait for "
                "it to finish, or choose another -o"
            ) from None
        # The file may have been removed by the run that held it, while this
        # one waited: then the lock is on a file nobody else sees.
        try:
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        path.unlink(missing_ok=True)  # still locked: no run can take it meanwhile
        os.close(fd)


def _checksum(parts, salt):
    """SHA-256 of ``(name, array)`` parts: names, dtypes, shapes and bytes."""
    digest = hashlib.sha256(salt)
    for name, array in parts:
        array = np.asarray(array)
        digest.update(json.dumps([name, array.dtype.str, array.shape]).encode())
        digest.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
    return digest.hexdigest()


def _open_npz(path):
    stored = np.load(path, allow_pickle=False)
    if not isinstance(stored, np.lib.npyio.NpzFile):
        raise CorruptCheckpoint("an .npy array, not an .npz archive")
    return stored


def _reason(error):
    return " ".join(str(error).split()) or type(error).__name__


def _csr(chunk, width):
    rows = len(chunk["indptr"]) - 1
    return sparse.csr_array(
        (chunk["data"], chunk["indices"], chunk["indptr"]), shape=(rows, width)
    )


def _savez(path, arrays):
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:  # a full disk, Ctrl-C: leave no half-written file
        tmp.unlink(missing_ok=True)
        raise
