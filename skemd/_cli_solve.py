"""``skemd solve``: a resumable batch solve from files to an ``.npz``."""

import argparse
import ast
import contextlib
import math
import os
import sys
import warnings
import zipfile
from pathlib import Path

import joblib
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._checkpoint import Checkpoint
from ._engine import chunk_bounds
from ._options import SolverOptions
from ._progress import ProgressBar
from ._solvers import DEFAULT_METHOD, METHODS
from ._stream import iter_emd_batch

# At least this many chunks, so that progress and checkpoints are fine-grained.
_MIN_CHUNKS = 100


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
        "re-running the same command continues where it stopped.",
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
    """Run ``skemd solve``; return the exit code."""
    M, a, b = (_load(path, what) for path, what in _inputs(args))
    if M.ndim != 3 or 0 in M.shape:
        raise InputError(
            f"{args.costs}: costs must be a non-empty 3-D (k, n, m) stack; got shape "
            f"{M.shape}"
        )
    k, n, m = M.shape
    bounds = _bounds(k, n * m, args)
    try:
        options = SolverOptions.build(**_solver_args(args))
    except ValueError as error:
        raise InputError(str(error)) from None
    run = Checkpoint(args.output, _manifest(args, M.shape, bounds, options))
    if run.completed():
        print(f"{args.output} already holds this run's results.", file=sys.stderr)
        return 0
    with _backend(args):
        chunks = _solve_pending(M, a, b, args, bounds, run)
    converged = run.finish()
    failed = int((~converged).sum())
    if failed:
        print(f"{failed} of {k} problems did not converge.", file=sys.stderr)
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
    bar = None
    if not args.quiet:
        bar = ProgressBar(len(M), done=sum(stop - start for start, stop in done))
    # Convergence is reported once, from the saved flags of every chunk.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for rows, res in chunks:
            if not run.saved(rows):  # a remote worker could not save it
                run.save_result(rows, res)
            if bar is not None:
                bar.advance(rows.stop - rows.start)
    if bar is not None:
        bar.close()
    return len(pending)


def _inputs(args):
    return [(args.costs, "M"), (args.a, "a"), (args.b, "b")]


def _load(path, name):
    """Load ``path`` (.npy memory-mapped read-only, or .npz) or raise InputError."""
    if path is None:
        return None
    try:
        if not path.endswith(".npz"):
            return np.load(path, mmap_mode="r")
        with np.load(path) as stored:
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


def _manifest(args, shape, bounds, options):
    return {
        "format": 2,
        "inputs": {name: _identity(path) for path, name in _inputs(args)},
        "shape": list(shape),
        "plans": options.plan,
        "solver": options.identity,
        "chunks": [list(chunk) for chunk in bounds],
    }


def _identity(path):
    if path is None:
        return None
    stat = os.stat(path)
    return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]


@contextlib.contextmanager
def _backend(args):
    if args.scheduler and args.backend != "dask":
        raise InputError("--scheduler is for --backend dask")
    if args.backend != "dask":
        with joblib.parallel_config(backend=args.backend):
            yield
        return
    try:
        from distributed import Client
    except ImportError:
        raise InputError(
            "--backend dask needs dask.distributed: pip install 'skemd[dask]'"
        ) from None
    client = Client(args.scheduler) if args.scheduler else Client(processes=True)
    with client, joblib.parallel_config(backend="dask"):
        yield
