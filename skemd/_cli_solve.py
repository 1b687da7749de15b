"""``skemd solve``: a resumable batch solve from files to an ``.npz``."""

import argparse
import ast
import contextlib
import hashlib
import importlib.util
import json
import math
import os
import shutil
import sys
import warnings
import zipfile
from pathlib import Path

import joblib
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._checkpoint import Checkpoint, CorruptCheckpoint, OutputBusy, locked
from ._engine import chunk_bounds
from ._memmap import release_pages
from ._options import SolverOptions
from ._progress import progress_bar
from ._solvers import DEFAULT_METHOD, METHODS
from ._stream import iter_emd_batch

# At least this many chunks, so that progress and checkpoints are fine-grained.
_MIN_CHUNKS = 100
# Inputs are hashed in blocks of about this many bytes (as they are checked).
_HASH_BLOCK_BYTES = 1 << 24
# Bytes a chunk file takes beyond its arrays: zip and .npy headers, a block.
_CHUNK_OVERHEAD = 8192
# Seconds to wait for a dask scheduler given by --scheduler.
_CONNECT_TIMEOUT = 5


class InputError(Exception):
    """A problem with the command's input, reported as one line."""


def add_parser(commands):
    """Add the ``solve`` subcommand to ``commands``."""
    p = commands.add_parser(
        "solve",
        help="solve a stack of cost matrices from a file, resumably",
        description="Solve the k problems of a (k, n, m) stack of cost matrices "
        "stored in .npy (memory-mapped, never read whole) or .npz, and write "
        "distance, converged and optionally the plans to OUT.npz. Finished "
        "chunks are checkpointed in OUT.npz.partial/: after Ctrl-C or a kill, "
        "re-running the same command continues where it stopped (a run is known "
        "by its inputs' content and options; a damaged chunk is solved again). "
        "A second run on the same OUT.npz is refused while the first runs.",
        epilog="Sparse plans are saved as plan_data, plan_indices, plan_indptr "
        "and plan_shape: scipy.sparse.csr_array((plan_data, plan_indices, "
        "plan_indptr), shape=plan_shape) has one flattened plan per row.",
    )
    p.add_argument("costs", metavar="COSTS", help="(k, n, m) costs, .npy or .npz")
    p.add_argument("-o", "--output", required=True, metavar="OUT.npz")
    p.add_argument("--a", metavar="A", help="source weights, (n,) or (k, n)")
    p.add_argument("--b", metavar="B", help="target weights, (m,) or (k, m)")
    p.add_argument(
        "--plans", choices=["sparse", "dense"], help="also save the transport plans"
    )
    p.add_argument(
        "--method",
        choices=list(METHODS),
        default=DEFAULT_METHOD,
        help="; ".join(f"{name}: {spec.summary}" for name, spec in METHODS.items()),
    )
    p.add_argument("--reg", type=float, help="entropic regularisation")
    p.add_argument("--tol", type=float, help="stopping tolerance")
    p.add_argument("--max-iter", type=int, help="iteration limit per problem")
    p.add_argument(
        "--param",
        action="append",
        type=_method_param,
        default=[],
        metavar="NAME=VALUE",
        help="one of the method's own parameters (method_params), repeatable",
    )
    p.add_argument(
        "--n-jobs", type=int, default=-1, help="parallel workers (-1: all; default)"
    )
    p.add_argument(
        "--batch-size", type=int, help="problems per chunk (default: automatic)"
    )
    p.add_argument(
        "--backend",
        choices=["threading", "loky", "dask"],
        default="threading",
        help="joblib backend (default: threading)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="dask scheduler address, e.g. tcp://10.0.0.1:8786 (with --backend "
        "dask; default: a local cluster)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=solve)


def solve(args):
    """Run ``skemd solve``; return the exit code.

    Everything that can be checked is checked before anything is written or
    solved: the options, the output (a ``.npz`` that is no input, in a
    writable directory with room for the results), the inputs, the lock on
    the output and the dask scheduler.
    """
    options = _check_options(args)
    _check_output(args)
    M, a, b = (_load(path, what) for path, what in _inputs(args))
    if M.ndim != 3 or 0 in M.shape:
        raise InputError(
            f"{args.costs}: costs must be a non-empty 3-D (k, n, m) stack; got shape "
            f"{M.shape}"
        )
    k, n, m = M.shape
    bounds = _bounds(k, n * m, args)
    _check_space(args.output, M.shape, len(bounds), options)
    try:
        with locked(args.output), _backend(args):
            return _run(args, (M, a, b), bounds, options)
    except OutputBusy as error:
        raise InputError(str(error)) from None
    except CorruptCheckpoint as error:
        raise InputError(
            f"{error}; re-run the same command to solve it again"
        ) from None
    except OSError as error:  # writing failed: disk full, permissions, ...
        where = error.filename or args.output
        raise InputError(f"{where}: {error.strerror or error}") from None


def _run(args, inputs, bounds, options):
    run = Checkpoint(args.output, _manifest(inputs, bounds, options), warn=_warn)
    if run.completed():
        if run.remove_leftovers():
            print(f"Removed the leftover {run.directory}.", file=sys.stderr)
        print(f"{args.output} already holds this run's results.", file=sys.stderr)
        return 0
    chunks = _solve_pending(*inputs, args, bounds, run)
    converged = run.finish()
    failed = int((~converged).sum())
    if failed:
        print(
            f"{failed} of {len(converged)} problems did not converge.", file=sys.stderr
        )
    if not args.quiet:
        print(f"Solved {chunks} chunks; wrote {args.output}.", file=sys.stderr)
    return 0


def _solve_pending(M, a, b, args, bounds, run):
    done = run.done()
    pending = sorted(set(bounds) - set(done))
    try:
        chunks = iter_emd_batch(
            M,
            a,
            b,
            **_solver_args(args),
            n_jobs=args.n_jobs,
            chunks=pending,
            ordered=False,
            on_chunk=run.save_result,  # saved by the worker, as soon as solved
        )
    except ValueError as error:
        raise InputError(str(error)) from None
    run.open()
    solved = sum(stop - start for start, stop in done)
    bar = progress_bar(len(M), verbose=not args.quiet, initial=solved)
    # Convergence is reported once, from the saved flags of every chunk.
    with bar, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for rows, res in chunks:
            if not run.saved(rows):  # a remote worker could not save it
                run.save_result(rows, res)
            bar.update(rows.stop - rows.start)
    return len(pending)


def _inputs(args):
    return [(args.costs, "M"), (args.a, "a"), (args.b, "b")]


def _check_options(args):
    if args.n_jobs == 0:
        raise InputError("--n-jobs must be a number of workers, or -1 for all; got 0")
    if args.batch_size is not None and args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1; got {args.batch_size}")
    if args.scheduler and args.backend != "dask":
        raise InputError("--scheduler is for --backend dask")
    if args.backend == "dask" and importlib.util.find_spec("distributed") is None:
        raise InputError(
            "--backend dask needs dask.distributed: pip install 'skemd[dask]'"
        )
    try:
        return SolverOptions.build(**_solver_args(args))
    except ValueError as error:
        raise InputError(str(error)) from None


def _check_output(args):
    """Refuse an output that is not a writable ``.npz`` or that is an input."""
    out = Path(args.output)
    if out.suffix != ".npz":
        raise InputError(f"{out}: the output must be a .npz file")
    if out.is_dir():
        raise InputError(f"{out}: is a directory; -o names the .npz file to write")
    folder = out.parent
    if not folder.is_dir():
        raise InputError(f"{out}: there is no directory {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{out}: {folder} is not writable")
    # A run writes the output and its lock, and deletes its checkpoint folder.
    written = [out, Path(f"{out}.lock"), Path(f"{out}.partial")]
    flags = ("COSTS", "--a", "--b")
    for path, flag in zip((args.costs, args.a, args.b), flags, strict=True):
        if path is not None and any(_within(path, own) for own in written):
            raise InputError(
                f"{out}: -o would overwrite the input {flag} {path}; choose another "
                "output"
            )


def _within(path, target):
    """Whether ``path`` is ``target`` (by name or as a file) or inside it."""
    source, target_path = Path(path).resolve(), Path(target).resolve()
    if source == target_path or target_path in source.parents:
        return True
    with contextlib.suppress(OSError):
        return os.path.samefile(path, target)
    return False


def _check_space(output, shape, chunks, options):
    """Refuse a run whose results cannot fit on the output's disk."""
    k, n, m = shape
    per_problem = 8 + 1  # distance, converged
    if options.plan == "dense":
        per_problem += 8 * n * m
    elif options.plan == "sparse":  # a vertex of the polytope: n + m - 1 entries
        per_problem += 12 * (n + m) + 4
    # Chunks and output exist side by side until the output is written; the
    # chunks already saved are counted in both.
    partial = Path(f"{output}.partial")
    saved = sum(p.stat().st_size for p in partial.glob("chunk-*.npz"))
    folder = Path(output).parent
    free = shutil.disk_usage(folder).free
    need = 2 * k * per_problem + chunks * _CHUNK_OVERHEAD
    if free + saved < need:
        raise InputError(
            f"{output}: the results need about {_size(need)} and {folder} has "
            f"{_size(free)} free"
        )


def _size(nbytes):
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1000
    return None  # pragma: no cover


def _warn(message):
    print(f"skemd: warning: {message}", file=sys.stderr)


def _load(path, name):
    """Load ``path`` (.npy memory-mapped read-only, or .npz) or raise InputError."""
    if path is None:
        return None
    try:
        if not path.endswith(".npz"):
            return np.load(path, mmap_mode="r", allow_pickle=False)
        with np.load(path, allow_pickle=False) as stored:
            if name in stored.files:
                return stored[name]
            if len(stored.files) == 1:
                return stored[stored.files[0]]
            raise InputError(
                f"{path}: holds {', '.join(stored.files)}; name the array {name!r}"
            )
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise InputError(f"{path}: cannot read an array ({error})") from None


def _bounds(k, cells, args):
    # Fixed by the inputs alone (not n_jobs), so a resumed run finds the
    # same chunks whatever its number of workers.
    if args.batch_size:
        return chunk_bounds(k, batch_size=args.batch_size)
    largest = chunk_bounds(k, cells_per_problem=cells)
    size = min(largest[0][1] if largest else 1, math.ceil(k / _MIN_CHUNKS))
    return chunk_bounds(k, batch_size=max(1, size))


def _method_param(text):
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def _solver_args(args):
    return {
        "method": args.method,
        "reg": args.reg,
        "tol": args.tol,
        "max_iter": args.max_iter,
        "method_params": dict(args.param),
        "return_plan": args.plans or False,
    }


def _manifest(inputs, bounds, options):
    """The run's identity: the inputs' contents, the options and the chunks."""
    M = inputs[0]
    return {
        "format": 3,
        "inputs": {name: _digest(x) for name, x in zip("Mab", inputs, strict=True)},
        "shape": list(M.shape),
        "plans": options.plan,
        "solver": options.identity,
        "chunks": [list(chunk) for chunk in bounds],
    }


def _digest(array):
    """SHA-256 of an array's dtype, shape and values, read in blocks.

    A memmap larger than memory streams through: each block's pages are
    handed back to the OS once hashed.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._cli_solve import _digest
    >>> x = np.arange(6.0).reshape(2, 3)
    >>> _digest(x) == _digest(np.asfortranarray(x)), _digest(x) == _digest(x.T)
    (True, False)
    """
    if array is None:
        return None
    array = np.asarray(array)
    digest = hashlib.sha256(json.dumps([array.dtype.str, array.shape]).encode())
    if array.ndim == 0:
        array = array.reshape(1)
    rows = max(1, _HASH_BLOCK_BYTES // max(1, array[:1].nbytes))
    for start in range(0, len(array), rows):
        block = array[start : start + rows]
        digest.update(np.ascontiguousarray(block).reshape(-1).view(np.uint8))
        release_pages(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _backend(args):
    if args.backend != "dask":
        with joblib.parallel_config(backend=args.backend):
            yield
        return
    from distributed import Client

    if args.scheduler:
        try:
            client = Client(args.scheduler, timeout=_CONNECT_TIMEOUT)
        except (OSError, ValueError, TypeError) as error:
            raise InputError(
                f"--scheduler {args.scheduler}: cannot connect to a dask scheduler "
                f"({_one_line(error)})"
            ) from None
    else:
        client = Client(processes=True)
    with client, joblib.parallel_config(backend="dask"):
        yield


def _one_line(error):
    return " ".join(str(error).split()) or type(error).__name__
