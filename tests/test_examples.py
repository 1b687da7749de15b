"""Every example script runs to the end, and what it promises holds.

Each example prints its key figures; the checks below parse them. Timings are
printed too, but never checked: they depend on the machine and its load.

The examples run here on smaller data than in the documentation's gallery
(``SKEMD_EXAMPLES_SMALL=1``, read by the examples' hidden blocks): the same
code paths, the same promises, seconds instead of minutes. The docs build runs
them at full size.
"""

import re
import runpy
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("agg")

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))

# Every value equals POT's to this relative difference.
EXACT = 1e-9


def numbers(out, pattern, count=None):
    """The numbers that ``pattern``'s one group matches in ``out``."""
    found = [float(x) for x in re.findall(pattern, out, flags=re.MULTILINE)]
    assert found, f"no match for {pattern!r} in:\n{out}"
    if count is not None:
        assert len(found) == count, (pattern, found)
    return found


def check_quickstart(out):
    # k=1000 values of emd_batch, then the transformer's 5 features.
    differences = numbers(out, r"largest relative difference from POT: (\S+)$", 2)
    assert max(differences) <= EXACT


def check_grid_search(out):
    # Observed (k=200): test accuracy 0.920, mean CV accuracy 0.907 to 0.920.
    (accuracy,) = numbers(out, r"^test accuracy: (\S+)$", 1)
    assert accuracy >= 0.85
    cv = numbers(out, r": mean CV accuracy (\S+)$", 4)  # exact and 3 Sinkhorns
    assert min(cv) >= 0.85


def check_digits_emd_svm(out):
    # Observed (200 images): 0.980 for the EMD kernel and for the RBF kernel.
    (emd,) = numbers(out, r"^EMD-kernel SVM: test accuracy (\S+),", 1)
    (rbf,) = numbers(out, r"^RBF-kernel SVM: test accuracy (\S+),", 1)
    assert emd >= 0.9
    assert rbf >= 0.9


def check_scaling(out):
    # The four other methods' EMDs equal the loop's; their speed is not checked.
    differences = numbers(out, r"EMDs within (\S+) of the loop's", 4)
    assert max(differences) <= EXACT


def check_unequal_mass(out):
    # Observed: 0.570 normalised, 0.870 partial, 0.945 unbalanced (reg_m=0.1).
    (normalised,) = numbers(out, r"^exact EMD, normalised: mean CV accuracy (\S+)$", 1)
    (partial,) = numbers(out, r"^partial: mean CV accuracy (\S+)$", 1)
    (unbalanced,) = numbers(out, r"^unbalanced, reg_m=\S+: mean CV accuracy (\S+)$", 1)
    assert normalised <= 0.7  # the label is in the masses, which it discards
    assert min(partial, unbalanced) >= 0.8
    differences = numbers(out, r"largest difference from POT, .*: (\S+)$", 2)
    assert max(differences) <= 1e-6


def check_digits_neighbors(out):
    # Observed: 26.4% of the pairs solved for 150 images, 10.5% for 600, test
    # accuracy 0.967 (0.973 for the same classifier on the pixels).
    assert "same neighbours and distances as the full matrix: True" in out
    assert "each image its own first neighbour: True" in out
    shares = numbers(out, r"images: pairs solved \S+ of \S+: (\S+)%$", 2)
    assert shares[0] < 50 and shares[1] < 20  # the bounds pruned
    (accuracy,) = numbers(out, r"^EMD 5-NN classifier: test accuracy (\S+),", 1)
    assert accuracy >= 0.9


SPARSE_ROW = re.compile(
    r"^\s*(?P<n>\d+)\s+(?P<dense>[\d.]+) MB\s+(?P<sparse>[\d.]+) MB\s+"
    r"(?P<ratio>[\d.]+)%\s+(?P<peak_dense>[\d.]+) MB\s+(?P<peak_sparse>[\d.]+) MB"
    r"\s+(?P<nonzeros>\d+)\s+(?P<bound>\d+)\s+(?P<same>True|False)$",
    flags=re.MULTILINE,
)


def check_sparse_plans(out):
    rows = [match.groupdict() for match in SPARSE_ROW.finditer(out)]
    assert [int(row["n"]) for row in rows] == [20, 50, 100, 200]
    for row in rows:
        n = int(row["n"])
        assert row["same"] == "True"
        assert int(row["bound"]) == 2 * n - 1
        assert int(row["nonzeros"]) <= 2 * n - 1
        # At most 2n - 1 nonzeros of 8 + up to 8 bytes each, and a row pointer,
        # against n * n entries of 8 bytes: under 4/n (14.75% at n=20, 1.5% at
        # n=200 with 4-byte indices).
        assert float(row["ratio"]) / 100 < 4 / n
        if n >= 100:  # no dense plan is built (observed 14% at 100, 11% at 200)
            assert float(row["peak_sparse"]) < 0.25 * float(row["peak_dense"])


PROMISES = {
    "plot_quickstart.py": check_quickstart,
    "plot_grid_search.py": check_grid_search,
    "plot_digits_emd_svm.py": check_digits_emd_svm,
    "plot_digits_neighbors.py": check_digits_neighbors,
    "plot_scaling.py": check_scaling,
    "plot_sparse_plans.py": check_sparse_plans,
    "plot_unequal_mass.py": check_unequal_mass,
}


def test_there_are_examples():
    assert EXAMPLES


def test_every_example_has_a_promise():
    assert sorted(PROMISES) == sorted(path.name for path in EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, capsys, monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setenv("SKEMD_EXAMPLES_SMALL", "1")
    runpy.run_path(str(path), run_name="__main__")
    plt.close("all")
    out = capsys.readouterr().out
    PROMISES[path.name](out)
    assert "False" not in out  # no equality check failed


@pytest.mark.parametrize(
    ("check", "out"),
    [
        (check_quickstart, "largest relative difference from POT: 3.0e-09\n" * 2),
        (check_grid_search, "test accuracy: 0.500\n"),
        (
            check_digits_emd_svm,
            "EMD-kernel SVM: test accuracy 0.100, search 1.0 s\n"
            "RBF-kernel SVM: test accuracy 0.990, search 1.0 s\n",
        ),
        (check_scaling, "loop: 1.0 s\n"),  # timings only: nothing to check
        (
            check_digits_neighbors,  # it solved every pair
            "same neighbours and distances as the full matrix: True\n"
            "each image its own first neighbour: True\n"
            "400 images: pairs solved 79,800 of 79,800: 100.0%\n"
            "1,797 images: pairs solved 1,613,706 of 1,613,706: 100.0%\n"
            "EMD 5-NN classifier: test accuracy 0.958, fit and predict 1.0 s\n",
        ),
        (
            check_unequal_mass,
            "exact EMD, normalised: mean CV accuracy 0.950\n"
            "partial: mean CV accuracy 0.950\n"
            "unbalanced, reg_m=0.1: mean CV accuracy 0.950\n"
            "partial: largest difference from POT, relative to the largest: 0.0\n"
            "unbalanced: largest difference from POT, relative to the largest: 0.0\n",
        ),
        (
            check_sparse_plans,
            "".join(  # sparse plans as large as half the dense ones
                f"{n} 1.0 MB 0.50 MB 50.00% 1.0 MB 0.1 MB {b} {b} True\n"
                for n, b in [(20, 39), (50, 99), (100, 199), (200, 399)]
            ),
        ),
    ],
)
def test_a_broken_promise_fails(check, out):
    with pytest.raises(AssertionError):
        check(out)


def test_every_public_name_has_a_runnable_example():
    # The examples themselves run as doctests (--doctest-modules).
    import skemd

    for name in skemd.__all__:
        if name != "__version__":
            assert ">>> " in getattr(skemd, name).__doc__, name
