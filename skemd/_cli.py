"""The ``skemd`` command line: ``skemd demo`` and ``skemd solve``."""

import argparse
import sys
import time

import numpy as np

from . import _cli_solve

# What the steps of ``skemd demo`` claim. The accuracy bounds are cleared by
# a wide margin (the pipeline scores 0.89 to 0.96 over --seed 0 to 59, the
# kernel SVM 0.92 on the default 150 digits and 0.88 to 1.0 over other
# splits) and are far above chance (0.5 and 0.1).
_MAX_RELATIVE_DIFFERENCE = 1e-9
_MIN_PIPELINE_ACCURACY = 0.8
_MIN_KERNEL_ACCURACY = 0.8

# How far the points of the pipeline's two classes are shifted.
_PIPELINE_SHIFTS = (0.1, 0.25)


def _check(value, relation, bound):
    """Whether ``value`` is ``relation`` (">=" or "<=") ``bound``, and the check
    as printed after the value, e.g. ``"(>= 0.8: ok)"``."""
    holds = bool(value >= bound if relation == ">=" else value <= bound)
    return holds, f"({relation} {bound:g}: {'ok' if holds else 'FAILED'})"


def _demo_issue_598(k, n, seed):
    import ot

    from . import emd_batch

    rng = np.random.default_rng(seed)
    M = rng.random((k, n, n))
    a = np.full(n, 1.0 / n)
    print(f"POT issue #598's case: k={k} cost matrices of {n}x{n}.")
    start = time.perf_counter()
    loop = np.stack([ot.emd(a, a, M[i]) for i in range(k)])
    t_loop = time.perf_counter() - start
    start = time.perf_counter()
    res = emd_batch(M, return_plan=True, n_jobs=-1)
    t_skemd = time.perf_counter() - start
    loop_cost = (loop * M).sum(axis=(1, 2))
    difference = np.max(np.abs(res.distance - loop_cost) / loop_cost)
    ok, check = _check(difference, "<=", _MAX_RELATIVE_DIFFERENCE)
    print(f"  the issue's loop of ot.emd : {t_loop:7.3f} s")
    print(
        f"  skemd.emd_batch            : {t_skemd:7.3f} s"
        f"  (speed-up {t_loop / t_skemd:.1f}x)"
    )
    print(
        f"  largest relative difference from the loop's EMDs: {difference:.1e} {check}"
    )
    return ok


def _demo_pipeline(seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from . import BatchEMDTransformer

    # Each sample moves n points on a line onto a fixed grid; the two classes
    # differ in how far the points were shifted, which the EMD measures.
    rng = np.random.default_rng(seed)
    k, n = 300, 20
    y = rng.integers(0, 2, k)
    grid = np.linspace(0, 1, n)
    shift = np.where(y == 1, _PIPELINE_SHIFTS[1], _PIPELINE_SHIFTS[0])
    shift = shift + rng.normal(0, 0.05, k)
    points = grid + shift[:, None] + rng.normal(0, 0.02, (k, n))
    X = (points[:, :, None] - grid[None, None, :]) ** 2
    pipe = make_pipeline(
        BatchEMDTransformer(n_jobs=-1),
        StandardScaler(),
        LogisticRegression(),
    )
    scores = cross_val_score(pipe, X, y, cv=5)
    ok, check = _check(scores.mean(), ">=", _MIN_PIPELINE_ACCURACY)
    print(f"\nA pipeline on {k} generated samples of {n}x{n} costs:")
    print("  BatchEMDTransformer -> StandardScaler -> LogisticRegression")
    print(f"  5-fold accuracy: {scores.mean():.3f} +/- {scores.std():.3f} {check}")
    return ok


def _demo_digits_kernel(n_samples):
    import tempfile

    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV, train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC

    from . import PairwiseEMDTransformer

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X[:n_samples], y[:n_samples], random_state=0, stratify=y[:n_samples]
    )
    pixels = np.indices((8, 8)).reshape(2, -1).T.astype(float)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        emd = PairwiseEMDTransformer(
            support=pixels, output="kernel", memory=cache, n_jobs=-1
        )
        search = GridSearchCV(
            make_pipeline(emd, SVC(kernel="precomputed")),
            {"pairwiseemdtransformer__gamma": [0.03, 0.1, 0.3], "svc__C": [10, 100]},
            cv=3,
        ).fit(X_train, y_train)
        accuracy = search.score(X_test, y_test)
    seconds = time.perf_counter() - start
    ok, check = _check(accuracy, ">=", _MIN_KERNEL_ACCURACY)
    print(f"\nAn EMD-kernel SVM on {n_samples} load_digits images (8x8 histograms):")
    print("  PairwiseEMDTransformer(output='kernel') -> SVC(kernel='precomputed')")
    print(f"  3-fold grid search over gamma and C, pairs cached: {seconds:.1f} s")
    print(f"  test accuracy: {accuracy:.3f} {check}")
    return ok


def demo(args):
    """Run POT issue #598's case, a small pipeline and an EMD kernel, checking
    what each claims; return 0 if every claim holds, else 1."""
    holds = [
        _demo_issue_598(args.k, args.n, args.seed),
        _demo_pipeline(args.seed),
        _demo_digits_kernel(args.digits),
    ]
    failed = holds.count(False)
    if failed:
        print(f"\n{failed} of {len(holds)} claims FAILED.")
        return 1
    print(f"\nAll {len(holds)} claims hold.")
    return 0


def build_parser():
    """Return the ``skemd`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="skemd", description="Batched exact optimal transport for scikit-learn."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser(
        "demo",
        help="solve POT issue #598's case against POT's loop, then run two pipelines",
        description="Solve k random n x n problems with skemd and with a loop of "
        "ot.emd, compare times and values, cross-validate a small "
        "BatchEMDTransformer pipeline on generated data, then grid-search an "
        "EMD-kernel SVM on load_digits. Each step checks what it claims (equal "
        "values, accuracies above a bound); the exit code is 1 if one fails.",
    )
    p.add_argument("--k", type=int, default=1000, help="number of problems (1000)")
    p.add_argument("--n", type=int, default=100, help="problem size n = m (100)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument(
        "--digits", type=int, default=150, help="digit images for the kernel SVM (150)"
    )
    p.set_defaults(run=demo)
    _cli_solve.add_parser(commands)
    return parser


def main(argv=None):
    """Entry point of the ``skemd`` console script; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except _cli_solve.InputError as error:
        message = " ".join(str(error).split())  # always one line
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"{parser.prog}: interrupted; re-run the same command to resume.",
            file=sys.stderr,
        )
        return 130
