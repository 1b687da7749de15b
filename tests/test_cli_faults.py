"""``skemd solve`` under faults (issue #13), each reproduced with real processes.

Concurrent runs on one output, an input changed behind an old mtime, damaged
checkpoint chunks and outputs, an output that is an input, output-side
errors, and a kill between writing the output and removing the checkpoint.

The faults come from real processes: killed, stopped or concurrent runs, and
a read-only mount. The runs that only meet a fault's leftovers, or that must
be refused before solving, call the command's ``main`` in this process (the
code ``python -m skemd`` runs), judged on its exit code and stderr: a Python
start per run costs seconds. test_cli_solve.py checks that an error reaches
the terminal of ``python -m skemd`` as one line with exit code 2.
"""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from contextlib import redirect_stderr

import numpy as np
import pytest

from skemd import emd_batch
from skemd._checkpoint import Checkpoint
from skemd._cli import main
from skemd._cli_solve import _digest

# Sparse plans in chunks of 10: 40 chunks, a few seconds of solving.
SOLVE = ["--plans", "sparse", "--batch-size", "10", "--n-jobs", "2"]


def _skemd(*args):
    return [sys.executable, "-m", "skemd", *map(str, args)]


# What Python hides by default, and so a run of ``python -m skemd`` too.
_HIDDEN = (
    DeprecationWarning,
    PendingDeprecationWarning,
    ImportWarning,
    ResourceWarning,
)


def _solve_in_a_process(*args, timeout=300):
    command = _skemd("solve", *args)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def _solve(*args):
    """``skemd solve args`` in this process, its outcome as ``subprocess.run``'s.

    Warnings join stderr as Python would print them in a run of its own.
    """
    err = io.StringIO()
    with redirect_stderr(err), warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        for category in _HIDDEN:
            warnings.simplefilter("ignore", category)
        code = main(["solve", *map(str, args)])
    for w in caught:
        err.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno))
    return subprocess.CompletedProcess(args, code, "", err.getvalue())


def _assert_one_error_line(run, *fragments):
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("skemd: error: "), run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
    for fragment in fragments:
        assert fragment in run.stderr, run.stderr


def _contents(path):
    with np.load(path, allow_pickle=False) as saved:
        return {name: saved[name] for name in saved.files}


def _assert_same_npz(path, expected):
    got, want = _contents(path), _contents(expected)
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name, strict=True)


def _chunks(partial):
    return sorted(partial.glob("chunk-*.npz"), key=lambda p: int(p.stem.split("-")[1]))


def _wait_for_chunks(process, partial, count, timeout=120):
    deadline = time.monotonic() + timeout
    while len(_chunks(partial)) < count and process.poll() is None:
        assert time.monotonic() < deadline, "no chunk was saved in time"
        time.sleep(0.01)


def _killed_midway(args, partial, after=8):
    """Run ``skemd solve args``; SIGKILL it once ``after`` chunks are saved."""
    run = subprocess.Popen(_skemd("solve", *args), stderr=subprocess.DEVNULL)
    _wait_for_chunks(run, partial, after)
    run.kill()
    run.wait()
    return _chunks(partial)


def _stack():
    return np.random.default_rng(7).random((400, 50, 50))


@pytest.fixture
def costs(tmp_path):
    """A (400, 50, 50) stack, saved in M.npy."""
    M = _stack()
    np.save(tmp_path / "M.npy", M)
    return M


@pytest.fixture(scope="module")
def solved_once(tmp_path_factory):
    """The output of an uninterrupted run of ``SOLVE`` on the stack of ``costs``."""
    folder = tmp_path_factory.mktemp("whole")
    np.save(folder / "M.npy", _stack())
    run = _solve(folder / "M.npy", *SOLVE, "--quiet", "-o", folder / "whole.npz")
    assert run.returncode == 0, run.stderr
    return folder / "whole.npz"


@pytest.fixture
def whole(solved_once, costs, tmp_path):
    """The output of an uninterrupted run of ``SOLVE`` on M.npy, in tmp_path.

    A run is its inputs' content, not their path: one run serves every test.
    """
    return shutil.copyfile(solved_once, tmp_path / "whole.npz")


# 1. Two runs on one output.


@pytest.mark.slow
def test_a_second_run_on_a_locked_output_is_refused(costs, tmp_path):
    other = np.random.default_rng(8).random(costs.shape)
    np.save(tmp_path / "B.npy", other)
    out, partial = tmp_path / "out.npz", tmp_path / "out.npz.partial"
    first = subprocess.Popen(
        _skemd("solve", tmp_path / "M.npy", *SOLVE, "--quiet", "-o", out),
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for_chunks(first, partial, 1)
    first.send_signal(signal.SIGSTOP)  # holds the lock, mid-run
    try:
        # In a process of its own: a run that waited for the lock would time
        # out there, not hang this one.
        second = _solve_in_a_process(tmp_path / "B.npy", *SOLVE, "-o", out)
    finally:
        first.send_signal(signal.SIGCONT)
    _assert_one_error_line(second, f"skemd solve (pid {first.pid}) is writing {out}")
    assert first.wait(timeout=300) == 0, first.stderr.read()
    np.testing.assert_array_equal(_contents(out)["distance"], emd_batch(costs).distance)
    assert not (tmp_path / "out.npz.lock").exists()
    # Once the first is done, the second runs, and the output says whose it is.
    assert _solve(tmp_path / "B.npy", *SOLVE, "-o", out).returncode == 0
    saved = _contents(out)
    assert json.loads(str(saved["run"]))["inputs"]["M"] == _digest(other)
    np.testing.assert_array_equal(saved["distance"], emd_batch(other).distance)


@pytest.mark.slow
def test_two_runs_started_together_never_mix_their_results(tmp_path):
    # The issue's `skemd solve A.npy -o out.npz & skemd solve B.npy -o out.npz`.
    stacks = {}
    for seed, name in enumerate(("A", "B")):
        stacks[name] = np.random.default_rng(seed).random((3000, 50, 50))
        np.save(tmp_path / f"{name}.npy", stacks[name])
    out = tmp_path / "out.npz"
    runs = {
        name: subprocess.Popen(
            _skemd("solve", tmp_path / f"{name}.npy", "-o", out, "--quiet"),
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in stacks
    }
    codes = {name: run.wait(timeout=600) for name, run in runs.items()}
    errors = {name: run.stderr.read() for name, run in runs.items()}
    assert sorted(codes.values()) == [0, 2], errors
    winner, loser = sorted(codes, key=codes.get)
    assert errors[loser].count("\n") == 1 and "is writing" in errors[loser]
    saved = _contents(out)
    assert json.loads(str(saved["run"]))["inputs"]["M"] == _digest(stacks[winner])
    np.testing.assert_array_equal(saved["distance"], emd_batch(stacks[winner]).distance)


# 2. A run is its inputs' content, not their path, size and mtime.


def _replace_keeping_mtime(path, array):
    before = os.stat(path)
    np.save(path, array)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


@pytest.mark.slow
def test_an_input_changed_behind_its_old_mtime_is_solved_again(costs, tmp_path):
    out, partial = tmp_path / "out.npz", tmp_path / "out.npz.partial"
    saved = _killed_midway([tmp_path / "M.npy", *SOLVE, "-o", out], partial)
    assert 8 <= len(saved) < 40 and not out.exists()
    manifest = json.loads((partial / "manifest.json").read_text())
    assert (tmp_path / "out.npz.lock").exists()  # left by the kill, not locked
    # Changed under a checkpoint, then under a finished output: never taken
    # for the old input, neither resumed nor said to be done.
    for M in (np.random.default_rng(9).random(costs.shape), costs):
        _replace_keeping_mtime(tmp_path / "M.npy", M)
        run = _solve(tmp_path / "M.npy", *SOLVE, "-o", out)
        assert run.returncode == 0, run.stderr
        assert "Solved 40 chunks" in run.stderr  # nothing of the old input kept
        distance = _contents(out)["distance"]
        np.testing.assert_array_equal(distance, emd_batch(M).distance)
        assert not partial.exists() and not (tmp_path / "out.npz.lock").exists()
    # The run is known by its content (format 3), not by path, size and mtime.
    assert manifest["format"] == 3
    assert manifest["inputs"] == {"M": _digest(costs), "a": None, "b": None}


# 3. Damaged chunks are found, named, solved again; never served, never blocking.


class _Unpickled:
    """Unpickling this creates a file: proof that something was unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def _damage(chunks, tmp_path, manifest):
    """Damage five saved chunks, each its own way; return their files."""
    truncated, short, altered, moved, pickled = chunks[:5]
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    # One row short, yet well formed and with a valid checksum.
    start, stop = (int(i) for i in short.stem.split("-")[1:])
    arrays = _contents(short)
    end = arrays["indptr"][-2]
    cut = {"distance": -1, "converged": -1, "indptr": -1, "data": end, "indices": end}
    shorter = {name: arrays[name][:end] for name, end in cut.items()}
    Checkpoint(tmp_path / "out.npz", manifest).save(start, stop, **shorter)
    # Other values under the old name and the old checksum.
    arrays = _contents(altered)
    arrays["distance"] = arrays["distance"] + 1.0
    np.savez(altered, **arrays)
    # Another chunk's file (a valid checksum) under this chunk's name.
    shutil.copyfile(chunks[-1], moved)
    arrays = _contents(pickled)
    arrays["distance"] = np.array([_Unpickled(tmp_path / "unpickled")], dtype=object)
    np.savez(pickled, **arrays)
    return [truncated, short, altered, moved, pickled]


@pytest.mark.slow
def test_damaged_chunks_are_named_and_solved_again(whole, tmp_path):
    out, partial = tmp_path / "out.npz", tmp_path / "out.npz.partial"
    chunks = _killed_midway([tmp_path / "M.npy", *SOLVE, "-o", out], partial)
    manifest = json.loads((partial / "manifest.json").read_text())
    damaged = _damage(chunks, tmp_path, manifest)

    run = _solve(tmp_path / "M.npy", *SOLVE, "-o", out)
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "warning" in line]
    reasons = ["unreadable", "holds distance of shape (9,), not (10,)"]
    reasons += ["fails its checksum", "holds rows", "unreadable"]
    for line, path, reason in zip(warnings, damaged, reasons, strict=True):
        assert line.startswith(f"skemd: warning: {path} ") and reason in line, line
        assert line.endswith("; solving them again"), line
    assert f"Solved {40 - len(chunks) + 5} chunks" in run.stderr
    assert not (tmp_path / "unpickled").exists()
    _assert_same_npz(out, whole)  # bit for bit


@pytest.mark.slow
def test_a_damaged_output_is_solved_again(whole, tmp_path):
    arrays = _contents(whole)
    out = tmp_path / "out.npz"
    arrays["distance"] = arrays["distance"] + 1.0
    np.savez(out, **arrays)  # this run's manifest and the old checksum
    run = _solve(tmp_path / "M.npy", *SOLVE, "-o", out)
    assert run.returncode == 0, run.stderr
    assert f"skemd: warning: {out} fails its checksum; solving this run" in run.stderr
    _assert_same_npz(out, whole)

    out.write_bytes(whole.read_bytes()[:-100])  # truncated
    run = _solve(tmp_path / "M.npy", *SOLVE, "-o", out)
    assert run.returncode == 0, run.stderr
    assert f"skemd: warning: {out} is unreadable" in run.stderr
    _assert_same_npz(out, whole)
    run = _solve(tmp_path / "M.npy", *SOLVE, "-o", out)
    assert "already holds this run's results" in run.stderr


# 4. The output is never one of the inputs.


@pytest.mark.slow
def test_an_output_that_is_an_input_is_refused_before_anything_is_written(tmp_path):
    M = np.random.default_rng(0).random((20, 4, 4))
    np.savez(tmp_path / "costs.npz", M=M)
    np.savez(tmp_path / "a.npz", a=np.full(4, 0.25))
    os.link(tmp_path / "costs.npz", tmp_path / "link.npz")
    (tmp_path / "sub").mkdir()
    before = (tmp_path / "costs.npz").read_bytes()
    cases = {
        "costs.npz -o costs.npz": "the input COSTS",
        "costs.npz -o sub/../costs.npz": "the input COSTS",
        "costs.npz -o link.npz": "the input COSTS",  # a hard link to it
        "costs.npz --a a.npz -o a.npz": "the input --a",
    }
    for args, message in cases.items():
        words = [str(tmp_path / w) if "." in w else w for w in args.split()]
        _assert_one_error_line(_solve(*words), message)
    assert (tmp_path / "costs.npz").read_bytes() == before
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["a.npz", "costs.npz", "link.npz", "sub"]


# 5. Output-side errors: one line and exit code 2, before solving.


@pytest.fixture
def small(tmp_path):
    np.save(tmp_path / "M.npy", np.random.default_rng(0).random((20, 4, 4)))
    return tmp_path / "M.npy"


UNREACHABLE = ["--backend", "dask", "--scheduler", "tcp://127.0.0.1:1"]


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("output", "options", "message"),
    [
        ("out.npz", ["--n-jobs", "0"], "--n-jobs must be a number of workers"),
        ("out.npz", ["--batch-size", "-3"], "--batch-size must be at least 1"),
        ("folder.npz", [], "folder.npz: is a directory"),  # was found after solving
        ("old.npy", [], "old.npy: the output must be a .npz file"),
        ("nowhere/out.npz", [], "there is no directory"),
        ("out.npz", UNREACHABLE, "127.0.0.1:1: cannot connect to a dask scheduler"),
    ],
)
def test_output_side_errors_are_one_line_before_anything_is_written(
    small, tmp_path, output, options, message
):
    if "dask" in options:
        pytest.importorskip("distributed")
    (tmp_path / "folder.npz").mkdir()
    np.save(tmp_path / "old.npy", np.arange(3))
    before = _files(tmp_path)
    start = time.monotonic()
    _assert_one_error_line(_solve(small, "-o", tmp_path / output, *options), message)
    assert time.monotonic() - start < 60  # a short connect timeout
    assert _files(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == ["M.npy", "folder.npz", "old.npy"]


@pytest.mark.slow
def test_a_read_only_output_directory_is_refused(small, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    out = folder / "out.npz"
    if os.geteuid() != 0:  # permissions bind everyone but root
        folder.chmod(0o555)
        run = _solve(small, "-o", out)
    elif shutil.which("unshare"):  # root: a read-only mount, in its own namespace
        script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift &&'
        command = ["unshare", "-Urm", "sh", "-c", f'{script} exec "$@"', "-", folder]
        command += _skemd("solve", small, "-o", out)
        run = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if "mount" in run.stderr or "unshare" in run.stderr:
            pytest.skip(f"no read-only mount for root here: {run.stderr.strip()}")
    else:
        pytest.skip("root writes anywhere, and unshare is missing")
    _assert_one_error_line(run, f"{folder} is not writable")
    folder.chmod(0o755)
    assert list(folder.iterdir()) == []


@pytest.mark.slow
def test_results_larger_than_the_free_space_are_refused(tmp_path):
    # A sparse file of about half the free space: its distances and flags,
    # kept twice (checkpoint and output), do not fit.
    k = shutil.disk_usage(tmp_path).free // 16 + 1
    try:
        M = np.lib.format.open_memmap(tmp_path / "M.npy", "w+", np.float64, (k, 1, 1))
    except OSError as error:  # a file system that cannot hold such a file
        pytest.skip(f"cannot create a {k * 8}-byte sparse file: {error}")
    del M
    start = time.monotonic()
    run = _solve(tmp_path / "M.npy", "-o", tmp_path / "out.npz")
    (tmp_path / "M.npy").unlink()
    _assert_one_error_line(run, "the results need about", "free")
    assert time.monotonic() - start < 60  # refused up front, nothing read
    assert list(tmp_path.iterdir()) == []


# 6. A kill between writing the output and removing the checkpoint.

# Runs skemd, killing it when it removes the checkpoint of a written output.
_KILLED_BEFORE_CLEANUP = """
import os, pathlib, shutil, signal, sys
from skemd._cli import main

def killed(path, *args, **kwargs):
    if pathlib.Path(sys.argv[-1]).exists() and pathlib.Path(path).exists():
        os.kill(os.getpid(), signal.SIGKILL)
    return remove(path, *args, **kwargs)

remove, shutil.rmtree = shutil.rmtree, killed
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_checkpoint_left_beside_a_finished_output_is_removed(whole, tmp_path):
    out, partial = tmp_path / "out.npz", tmp_path / "out.npz.partial"
    args = ["solve", tmp_path / "M.npy", *SOLVE, "-o", out]
    command = [sys.executable, "-c", _KILLED_BEFORE_CLEANUP, *map(str, args)]
    killed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(_chunks(partial)) == 40  # the whole checkpoint, left behind
    _assert_same_npz(out, whole)

    run = _solve(*args[1:])
    assert run.returncode == 0, run.stderr
    assert f"Removed the leftover {partial}." in run.stderr
    assert "already holds this run's results" in run.stderr
    assert not partial.exists() and not (tmp_path / "out.npz.lock").exists()
    _assert_same_npz(out, whole)
