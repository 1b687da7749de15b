import re
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skemd import _cli
from skemd._cli import main

# Small enough to run in seconds; 100 digits clear the kernel SVM's bound
# (0.96 here) as the default 150 do.
SMALL = ["demo", "--k", "40", "--n", "20", "--digits", "100"]

CLAIMS = {
    "issue_598": "largest relative difference from the loop's EMDs: ",
    "pipeline": "5-fold accuracy: ",
    "kernel": "test accuracy: ",
}


def verdicts(out):
    """The verdict ("ok" or "FAILED") printed on each claim's line."""
    found = {}
    for step, text in CLAIMS.items():
        (line,) = [line for line in out.splitlines() if text in line]
        found[step] = re.search(r": (ok|FAILED)\)$", line).group(1)
    return found


@pytest.mark.slow
def test_demo_runs_and_checks_its_claims(capsys):
    assert main(SMALL) == 0
    out = capsys.readouterr().out
    assert verdicts(out) == {step: "ok" for step in CLAIMS}
    assert "All 3 claims hold." in out
    assert "EMD-kernel SVM on 100 load_digits images" in out
    assert "seed" not in out.lower()  # --seed is the random seed, not the issue
    difference = float(re.search(r"loop's EMDs: (\S+) \(<= 1e-09: ok", out).group(1))
    assert difference <= 1e-9


def _non_optimal_emd(a, b, M):
    return np.outer(a, b)  # a feasible plan, but not an optimal one


def _shuffled_digits(return_X_y=True):
    X, y = load_digits(return_X_y=return_X_y)
    return X, np.random.default_rng(0).permutation(y)


@pytest.mark.slow
@pytest.mark.parametrize("step", list(CLAIMS))
def test_demo_fails_when_a_claim_fails(capsys, monkeypatch, step):
    # Break each step's data so that its claim is false, not its return value.
    if step == "issue_598":  # the loop's EMDs no longer equal skemd's
        monkeypatch.setattr("ot.emd", _non_optimal_emd)
    elif step == "pipeline":  # the two classes no longer differ: chance accuracy
        monkeypatch.setattr(_cli, "_PIPELINE_SHIFTS", (0.1, 0.1))
    else:  # labels unrelated to the images: chance accuracy
        monkeypatch.setattr("sklearn.datasets.load_digits", _shuffled_digits)
    assert main(SMALL) == 1
    out = capsys.readouterr().out
    expected = {name: "FAILED" if name == step else "ok" for name in CLAIMS}
    assert verdicts(out) == expected
    assert "1 of 3 claims FAILED." in out


@pytest.mark.slow
def test_module_entry_point_help():
    out = subprocess.run(
        [sys.executable, "-m", "skemd", "demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--k" in out and "ot.emd" in out


def test_unknown_command_exits_non_zero():
    with pytest.raises(SystemExit) as exc:
        main(["nope"])
    assert exc.value.code == 2
