"""``skemd solve``: results, resuming after a kill, and one-line errors."""

import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from scipy import sparse

from skemd import emd_batch
from skemd._cli import main


def _csr(saved):
    return sparse.csr_array(
        (saved["plan_data"], saved["plan_indices"], saved["plan_indptr"]),
        shape=tuple(saved["plan_shape"]),
    )


@pytest.fixture
def stack(rng, tmp_path):
    M = rng.random((300, 6, 5))
    a = rng.dirichlet(np.ones(6), size=300)
    np.save(tmp_path / "M.npy", M)
    np.savez(tmp_path / "a.npz", a=a)
    return M, a


@pytest.mark.parametrize("plans", [None, "sparse", "dense"])
def test_solve_writes_what_emd_batch_returns(stack, tmp_path, plans, capsys):
    M, a = stack
    out = tmp_path / "out.npz"
    argv = ["solve", str(tmp_path / "M.npy"), "--a", str(tmp_path / "a.npz")]
    argv += ["-o", str(out), "--n-jobs", "2"] + (["--plans", plans] if plans else [])
    assert main(argv) == 0
    expected = emd_batch(M, a=a, return_plan=plans or False)
    with np.load(out) as saved:
        np.testing.assert_array_equal(saved["distance"], expected.distance)
        assert saved["converged"].all()
        if plans == "sparse":
            assert (_csr(saved) != expected.plan).nnz == 0
        elif plans == "dense":
            np.testing.assert_array_equal(saved["plan"], expected.plan)
    assert not (tmp_path / "out.npz.partial").exists()
    last = capsys.readouterr().err.rstrip("\n").split("\r")[-1]
    assert last.startswith("100%") and "300/300" in last and "problems/s" in last
    assert main(argv) == 0  # a finished run is not redone
    assert "already holds this run's results" in capsys.readouterr().err


def _skemd(*args):
    return [sys.executable, "-m", "skemd", *map(str, args)]


def _start_and_stop(command, partial, sig, after=30):
    """Run ``command``; send ``sig`` once ``after`` chunks are saved."""
    # A shell's background job starts with SIGINT ignored, and so would Python:
    # the child gets the default, so that SIGINT interrupts it as at a terminal.
    run = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    while len(list(partial.glob("chunk-*.npz"))) < after and run.poll() is None:
        time.sleep(0.01)
    run.send_signal(sig)
    err = run.communicate()[1]
    return run.returncode, err, len(list(partial.glob("chunk-*.npz")))


def _big_stack():
    # 120 chunks that take seconds in all: the stopped run's test only polls
    # for them, and on a loaded machine it may not run again before a shorter
    # run ends.
    return np.random.default_rng(7).random((12000, 30, 30))


# The options of the stopped runs, after the costs.
_STOPPED = ["--plans", "sparse", "--n-jobs", "2", "--batch-size", "100"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The output of an uninterrupted run of ``_STOPPED`` on ``_big_stack()``.

    One run, in this process, serves both stopped runs: a run is its inputs'
    content, not their path.
    """
    folder = tmp_path_factory.mktemp("uninterrupted")
    np.save(folder / "M.npy", _big_stack())
    out = folder / "whole.npz"
    assert main(["solve", str(folder / "M.npy"), *_STOPPED, "-o", str(out)]) == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_stopped_run_resumes_and_equals_an_uninterrupted_run(
    tmp_path, sig, uninterrupted, capsys
):
    np.save(tmp_path / "M.npy", _big_stack())
    command = ["solve", tmp_path / "M.npy", *_STOPPED]
    out = tmp_path / "resumed.npz"
    code, err, saved = _start_and_stop(
        _skemd(*command, "-o", out), tmp_path / "resumed.npz.partial", sig
    )
    assert 30 <= saved < 120 and not out.exists(), (code, err)
    if sig == signal.SIGINT:
        assert code == 130 and "re-run the same command to resume" in err
        # Workers save their chunks as they finish them, so only the chunks in
        # flight (one per worker) can finish unseen by the interrupted main
        # thread, saved all the same; before worker-side saves, 15 to 43 did.
        unused = re.search(r"(\d+) tasks have been successfully executed", err)
        assert unused is None or int(unused.group(1)) <= 2

    # The resumed run, in this process: the same code as python -m skemd.
    capsys.readouterr()
    assert main([*map(str, command), "-o", str(out)]) == 0
    assert f"Solved {120 - saved} chunks" in capsys.readouterr().err
    with np.load(uninterrupted) as whole, np.load(out) as again:
        np.testing.assert_array_equal(again["distance"], whole["distance"])
        assert (_csr(again) != _csr(whole)).nnz == 0


def test_a_checkpoint_of_another_run_is_discarded(stack, tmp_path):
    M, _ = stack
    out = tmp_path / "out.npz"
    partial = tmp_path / "out.npz.partial"
    partial.mkdir()
    (partial / "manifest.json").write_text('{"format": 0}')
    np.savez(partial / "chunk-0-300.npz", distance=np.zeros(300))
    assert main(["solve", str(tmp_path / "M.npy"), "-o", str(out), "--quiet"]) == 0
    with np.load(out) as saved:
        np.testing.assert_array_equal(saved["distance"], emd_batch(M).distance)


def _bad_inputs(tmp_path):
    M = np.random.default_rng(0).random((5, 3, 3))
    np.save(tmp_path / "flat.npy", M[0])
    np.save(tmp_path / "empty.npy", M[:0])
    M[3, 1, 2] = np.nan
    np.save(tmp_path / "nan.npy", M)
    np.save(tmp_path / "ok.npy", np.ones((5, 3, 3)))
    np.save(tmp_path / "a.npy", np.ones(3))
    np.save(tmp_path / "b.npy", np.full(3, 2.0))
    (tmp_path / "junk.npy").write_text("not an array")
    return {
        "flat.npy": "costs must be a non-empty 3-D (k, n, m) stack; got shape (3, 3)",
        "empty.npy": "got shape (0, 3, 3)",
        "nan.npy": "Cost matrix M[3] has a non-finite cost nan at position (1, 2)",
        "ok.npy --a a.npy --b b.npy": "different total masses (3.0 vs 6.0)",
        "junk.npy": "junk.npy: cannot read an array",
        "missing.npy": "missing.npy: cannot read an array",
    }


def test_bad_files_give_one_error_line_and_exit_code_2(tmp_path, capsys):
    for args, message in _bad_inputs(tmp_path).items():
        files = [
            str(tmp_path / word) if word.endswith(".npy") else word
            for word in args.split()
        ]
        assert main(["solve", *files, "-o", str(tmp_path / "out.npz")]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("skemd: error: ") and err.count("\n") == 1, err
        assert message in err
        assert not (tmp_path / "out.npz.partial").exists()


@pytest.mark.slow  # a Python start: seconds
def test_a_bad_file_gives_one_error_line_and_exit_code_2_through_python_m(tmp_path):
    _bad_inputs(tmp_path)
    run = subprocess.run(
        _skemd("solve", tmp_path / "nan.npy", "-o", tmp_path / "out.npz"),
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr


def _help(capsys, *argv):
    """What ``skemd argv --help`` prints; test_cli.py runs ``python -m skemd``."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--help"])
    assert stop.value.code == 0
    return capsys.readouterr().out


def test_help_names_every_option(capsys):
    out = _help(capsys, "solve")
    for option in ("--a", "--b", "--plans", "--n-jobs", "--backend", "--scheduler"):
        assert option in out
    assert "re-running the same command continues" in " ".join(out.split())
    top = _help(capsys)
    assert "solve" in top and "demo" in top


def test_a_run_is_its_inputs_content_not_their_path(stack, tmp_path, capsys):
    out = str(tmp_path / "out.npz")
    assert main(["solve", str(tmp_path / "M.npy"), "-o", out, "--quiet"]) == 0
    shutil.copy(tmp_path / "M.npy", tmp_path / "moved.npy")
    capsys.readouterr()
    assert main(["solve", str(tmp_path / "moved.npy"), "-o", out, "--quiet"]) == 0
    assert "already holds this run's results" in capsys.readouterr().err
    M = stack[0][::-1].copy()  # other values: another run
    np.save(tmp_path / "moved.npy", M)
    assert main(["solve", str(tmp_path / "moved.npy"), "-o", out, "--quiet"]) == 0
    assert "already holds" not in capsys.readouterr().err
    with np.load(out) as saved:
        np.testing.assert_array_equal(saved["distance"], emd_batch(M).distance)
