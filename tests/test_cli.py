import subprocess
import sys

import pytest

from skemd._cli import main


def test_demo_runs_and_checks_equality(capsys):
    assert main(["demo", "--k", "40", "--n", "20", "--digits", "60"]) == 0
    out = capsys.readouterr().out
    assert "every EMD equals the loop's to 1e-9: True" in out
    assert "5-fold accuracy" in out
    assert "EMD-kernel SVM on 60 load_digits images" in out


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
