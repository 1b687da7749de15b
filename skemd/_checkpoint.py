"""Checkpoints of a CLI run: each solved chunk is saved beside the output.

A run writes every finished chunk to ``OUT.partial/`` (one ``.npz`` per chunk,
renamed into place so a kill never leaves half a file) together with a
manifest of what is being solved. Re-running the same command finds the
manifest, keeps the chunks already done and solves the rest; when all are
done, the output is written (again by rename) and the checkpoint removed.
"""

import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
from scipy import sparse

_MANIFEST = "manifest.json"
_CSR_PARTS = ("data", "indices", "indptr")


class Checkpoint:
    """The chunks of one run, saved in ``<output>.partial/``.

    Parameters
    ----------
    output : str or Path
        The final ``.npz`` output.
    manifest : dict
        JSON-able description of the run (inputs, options, chunks). A
        checkpoint whose manifest differs belongs to another run and is
        discarded. Saving and joining read its ``"chunks"`` (a list of
        ``[start, stop]``), ``"plans"`` (None, "dense" or "sparse") and
        ``"shape"`` (``[k, n, m]``).

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
    """

    def __init__(self, output, manifest):
        self.output = Path(output)
        self.directory = Path(f"{output}.partial")
        self.manifest = json.loads(json.dumps(manifest))

    def completed(self):
        """Whether ``output`` already holds this run's finished results."""
        try:
            with np.load(self.output) as saved:
                return "run" in saved and json.loads(str(saved["run"])) == self.manifest
        except (OSError, ValueError, zipfile.BadZipFile):
            return False  # no output yet, or not one of ours: it is replaced

    def done(self):
        """The ``(start, stop)`` chunks this run has saved (none of another run)."""
        if self._stored_manifest() != self.manifest:
            return []
        return sorted(
            tuple(int(i) for i in path.stem.split("-")[1:])
            for path in self.directory.glob("chunk-*.npz")
        )

    def open(self):
        """Make the checkpoint this run's, discarding another run's."""
        if self._stored_manifest() != self.manifest:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory.mkdir(parents=True)
            _write_atomic(self.directory / _MANIFEST, json.dumps(self.manifest))

    def save(self, start, stop, **arrays):
        """Save one finished chunk's arrays."""
        path = self._chunk(start, stop)
        tmp = path.with_name(f".{path.name}")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)

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
        """Join the saved chunks into ``output`` and remove the checkpoint.

        Returns
        -------
        converged : ndarray of bool
            The convergence flags of all problems.
        """
        chunks = [self._load(start, stop) for start, stop in self.manifest["chunks"]]
        plans = self.manifest.get("plans")
        result = {
            "distance": np.concatenate([c["distance"] for c in chunks]),
            "converged": np.concatenate([c["converged"] for c in chunks]),
            "run": np.array(json.dumps(self.manifest)),
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
        tmp = self.output.with_name(f".{self.output.name}")
        with open(tmp, "wb") as f:
            np.savez(f, **result)
        os.replace(tmp, self.output)
        shutil.rmtree(self.directory)
        return result["converged"]

    def _stored_manifest(self):
        try:
            return json.loads((self.directory / _MANIFEST).read_text())
        except (OSError, ValueError):
            return None

    def _chunk(self, start, stop):
        return self.directory / f"chunk-{start}-{stop}.npz"

    def _load(self, start, stop):
        with np.load(self._chunk(start, stop)) as saved:
            return dict(saved)


def _csr(chunk, width):
    rows = len(chunk["indptr"]) - 1
    return sparse.csr_array(
        (chunk["data"], chunk["indices"], chunk["indptr"]), shape=(rows, width)
    )


def _write_atomic(path, text):
    tmp = path.with_name(f".{path.name}")
    tmp.write_text(text)
    os.replace(tmp, path)
