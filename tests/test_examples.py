"""Every example script runs to the end and reports what it promises."""

import runpy
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("agg")

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


def test_there_are_examples():
    assert EXAMPLES


# What each example must print: its claim, checked.
PROMISES = {
    "plot_quickstart.py": "every value equals POT's: True",
    "plot_grid_search.py": "test accuracy",
    "plot_digits_emd_svm.py": "EMD-kernel SVM ",
    "plot_scaling.py": "skemd on 2 workers is",
    "plot_sparse_plans.py": "True",
}


def test_every_example_has_a_promise():
    assert sorted(PROMISES) == sorted(path.name for path in EXAMPLES)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, capsys):
    import matplotlib.pyplot as plt

    runpy.run_path(str(path), run_name="__main__")
    plt.close("all")
    out = capsys.readouterr().out
    assert PROMISES[path.name] in out
    assert "False" not in out  # no equality check failed


def test_every_public_name_has_a_runnable_example():
    # The examples themselves run as doctests (--doctest-modules).
    import skemd

    for name in skemd.__all__:
        if name != "__version__":
            assert ">>> " in getattr(skemd, name).__doc__, name
