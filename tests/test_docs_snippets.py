"""Every code snippet in the README and the user guide runs, and does what it says.

The ```` ```python ```` blocks of README.md and the ``.. code-block:: python``
blocks of the documentation pages run file by file: the blocks of one file in
order, in one namespace (later blocks build on earlier ones), in a temporary
working directory. Names that a snippet takes from its prose or from an
earlier page (``M``, ``y``, ``pipe``, ...) come from a small, explicit setup
per file below, with small data so that the quick part stays quick; files a
snippet reads are written by that setup. A made-up dask scheduler address
connects to an in-process ``LocalCluster`` instead.
"""

import ast
import re
import textwrap
from pathlib import Path

import distributed
import numpy as np
import ot
import pytest
import scipy
import sklearn
from scipy import sparse
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

from skemd import (
    BatchEMDTransformer,
    PairwiseEMDTransformer,
    emd_batch,
    iter_emd_batch,
    pairwise_emd,
)
from skemd._cli import main as skemd_main

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DOC_FILES = [
    ROOT / "README.md",
    DOCS / "getting_started.rst",
    DOCS / "index.rst",
    *sorted((DOCS / "user_guide").glob("*.rst")),
]

# The python blocks each file had when this test was written: the extractor
# must find at least these, so that the test cannot silently run nothing.
MIN_BLOCKS = {
    "README.md": 4,
    "getting_started.rst": 1,
    "index.rst": 1,
    "user_guide/cli.rst": 1,
    "user_guide/dask.rst": 3,
    "user_guide/emd.rst": 4,
    "user_guide/kernels.rst": 4,
    "user_guide/neighbors.rst": 7,
    "user_guide/parallel.rst": 1,
    "user_guide/solvers.rst": 2,
    "user_guide/sparse.rst": 1,
    "user_guide/unequal_masses.rst": 5,
}

# The small stack every setup uses: k problems of n x m.
K, N, MM = 60, 6, 5


# --- extraction -------------------------------------------------------------

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[ \t]*$")
_DIRECTIVE = re.compile(
    r"^(?P<indent>[ \t]*)\.\.[ \t]+(?:code-block|code|sourcecode)::[ \t]*"
    r"(?P<lang>\S*)[ \t]*$"
)
_OPTION = re.compile(r"^[ \t]*:[\w-]+:")


def markdown_blocks(text):
    """``(first line number, code)`` of each ```` ```python ```` block."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        start = _FENCE.match(lines[i])
        i += 1
        if not start or not start["lang"]:
            continue
        body = []
        while i < len(lines) and not _FENCE.match(lines[i]):
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        if start["lang"] in ("python", "py"):
            code = textwrap.dedent("\n".join(body))
            blocks.append((i - len(body), code))
    return blocks


def _indent(line):
    return len(line) - len(line.lstrip())


def rst_blocks(text):
    """``(first line number, code)`` of each ``.. code-block:: python`` body.

    The body is every following line that is blank or indented deeper than
    the directive, after the directive's options (``:caption:`` ...).
    """
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        directive = _DIRECTIVE.match(lines[i])
        i += 1
        if not directive:
            continue
        indent = len(directive["indent"])
        while i < len(lines) and _OPTION.match(lines[i]) and _indent(lines[i]) > indent:
            i += 1
        start = i
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
            i += 1
        body = lines[start:i]
        while body and not body[0].strip():
            body, start = body[1:], start + 1
        if directive["lang"] in ("python", "py", "python3") and body:
            blocks.append((start + 1, textwrap.dedent("\n".join(body)).strip("\n")))
    return blocks


def code_blocks(path):
    text = path.read_text(encoding="utf-8")
    return markdown_blocks(text) if path.suffix == ".md" else rst_blocks(text)


def doc_id(path):
    return path.relative_to(DOCS if DOCS in path.parents else ROOT).as_posix()


def run_blocks(path, namespace):
    """Run the blocks of ``path`` in order in ``namespace``.

    Returns the value of each block's last statement when it is an expression
    (what an interactive session would show), else None. Tracebacks point at
    the documentation file's own lines.
    """
    values = []
    for lineno, code in code_blocks(path):
        tree = ast.parse(code, filename=str(path))
        ast.increment_lineno(tree, lineno - 1)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = compile(ast.Expression(tree.body.pop().value), str(path), "eval")
        exec(compile(tree, str(path), "exec"), namespace)
        values.append(None if last is None else eval(last, namespace))
    return values


# --- per-file setup: what each page takes from its prose or earlier pages ---


def stack(seed=0):
    """A small (K, N, MM) stack of costs, saved as costs.npy in the cwd."""
    M = np.random.default_rng(seed).random((K, N, MM))
    np.save("costs.npy", M)
    return M


def setup_readme(dask_client):
    stack()  # costs.npy: the huge-batch block memory-maps it
    # The Quickstart block imports numpy and defines everything else; the
    # check counts the tasks the dask cluster ran.
    return {"tasks_executed": dask_client.executed}


def setup_cli(dask_client):
    # OUT.npz: written by `skemd solve costs.npy --plans sparse -o OUT.npz`, so
    # the snippet reads the files the command really writes.
    stack()
    argv = ["solve", "costs.npy", "--plans", "sparse", "--n-jobs", "1", "--quiet"]
    assert skemd_main([*argv, "-o", "OUT.npz"]) == 0
    # The page's snippet uses numpy and scipy, imported as users would.
    return {"np": np, "scipy": scipy}


def setup_dask(dask_client):
    stack()  # costs.npy, which the first block memory-maps as M
    rng = np.random.default_rng(1)
    saved = []
    return {
        "np": np,
        "emd_batch": emd_batch,
        "iter_emd_batch": iter_emd_batch,
        "BatchEMDTransformer": BatchEMDTransformer,
        "GridSearchCV": GridSearchCV,
        # save(rows, distance, plan): the user's own sink for each chunk.
        "save": lambda rows, distance, plan: saved.append((rows, distance, plan)),
        "saved": saved,  # for the check only, as is tasks_executed
        "tasks_executed": dask_client.executed,
        # y, pipe and grid: a pipeline and grid as in the Quickstart and solvers.
        "y": rng.integers(0, 2, K),
        "pipe": make_pipeline(BatchEMDTransformer(), LogisticRegression()),
        "grid": {"logisticregression__C": [0.1, 10.0]},
    }


def setup_emd(dask_client):
    rng = np.random.default_rng(2)
    return {
        "M": stack(),  # the stack of costs, (k, n, m)
        "y": np.arange(K) % 2,  # labels, one per problem
        # A and B: per-problem marginals, (k, n) and (k, m), each row of mass 1.
        "A": rng.dirichlet(np.ones(N), size=K),
        "B": rng.dirichlet(np.ones(MM), size=K),
        "cross_val_score": cross_val_score,
        "make_pipeline": make_pipeline,
        "LogisticRegression": LogisticRegression,
    }


def setup_kernels(dask_client):
    return {
        # pixels: the 8x8 digits' bin coordinates, as defined in the README.
        "pixels": np.indices((8, 8)).reshape(2, -1).T.astype(float),
        "PairwiseEMDTransformer": PairwiseEMDTransformer,
        "make_pipeline": make_pipeline,
        "SVC": SVC,
        "GridSearchCV": GridSearchCV,
    }


def setup_parallel(dask_client):
    # The dask backend needs a connected Client: "Scaling out" creates it.
    dask_client("tcp://scheduler:8786")
    calls = []

    def recording_emd_batch(*args, **kwargs):
        calls.append(emd_batch(*args, **kwargs))
        return calls[-1]

    # emd_batch, recording each result so the backends can be compared.
    return {
        "M": stack(),
        "emd_batch": recording_emd_batch,
        "calls": calls,  # for the check only, as is tasks_executed
        "tasks_executed": dask_client.executed,
    }


def setup_solvers(dask_client):
    return {
        "make_pipeline": make_pipeline,
        "BatchEMDTransformer": BatchEMDTransformer,
        "LogisticRegression": LogisticRegression,
        "GridSearchCV": GridSearchCV,
    }


def setup_sparse(dask_client):
    return {"M": stack(), "n": N, "m": MM, "emd_batch": emd_batch}


SETUPS = {
    "README.md": setup_readme,
    "user_guide/cli.rst": setup_cli,
    "user_guide/dask.rst": setup_dask,
    "user_guide/emd.rst": setup_emd,
    "user_guide/kernels.rst": setup_kernels,
    "user_guide/parallel.rst": setup_parallel,
    "user_guide/solvers.rst": setup_solvers,
    "user_guide/sparse.rst": setup_sparse,
}


# --- per-file checks: what the snippets claim -------------------------------


def assert_grid_fits_pipeline(search):
    """Every parameter a GridSearchCV searches is one of its estimator's."""
    grids = search.param_grid
    for grid in grids if isinstance(grids, list) else [grids]:
        assert set(grid) <= set(search.estimator.get_params()), grid


def check_readme(ns, values):
    quickstart, digits = values[0], values[1]
    assert len(quickstart.cv_results_["params"]) == 3
    assert np.isfinite(quickstart.best_score_)
    last_chunk = range(K)[ns["rows"]]
    assert last_chunk[-1] == K - 1
    assert ns["res"].distance.shape == (len(last_chunk),)
    assert digits.best_score_ > 0.8  # the EMD-kernel SVM learns the digits
    D = values[2]  # pairwise_emd of three weighted clouds of different sizes
    assert D.shape == (3, 3) and (np.diag(D) == 0).all() and (D == D.T).all()
    assert any(Path("emd-cache").iterdir())  # the pair cache was used
    np.testing.assert_array_equal(np.load("emd.npy"), emd_batch(ns["M"]).distance)
    assert ns["tasks_executed"]() > 0  # the last block ran on the cluster


def check_getting_started(ns, values):
    assert ns["res"].plan.shape == (1000, 20, 20)
    assert ns["res"].converged.all()
    assert ns["pipe"].predict(ns["M"][:5]).shape == (5,)


def check_index(ns, values):
    assert values[-1] == (1000,)


def check_cli(ns, values):
    M = np.load("costs.npy")
    assert (ns["plans"] != emd_batch(M, return_plan="sparse").plan).nnz == 0


def check_dask(ns, values):
    M = ns["M"]
    assert isinstance(M, np.memmap)
    np.testing.assert_array_equal(np.load("emd.npy"), emd_batch(M).distance)
    rows = np.concatenate([np.arange(K)[rows] for rows, _, _ in ns["saved"]])
    np.testing.assert_array_equal(rows, np.arange(K))  # every chunk, in order
    assert ns["res"].plan.shape == (K, N * MM)
    assert sparse.issparse(ns["res"].plan)
    assert ns["tasks_executed"]() > 0  # the last block ran on the cluster


def check_emd(ns, values):
    assert values[0].shape == (K, N * MM)  # one flattened plan per sample
    scores = values[1]  # cross_val_score with routed marginals
    assert scores.shape == (5,)
    assert np.isfinite(scores).all()
    assert values[2] is True  # the certificate of every distance holds
    assert ns["res"].dual_a.shape == (K, N)
    assert values[3] is True  # a warm start gives the cold distances
    problems = zip(ns["A"], ns["B"], ns["M_next"], strict=True)
    expected = [ot.emd2(a, b, M) for a, b, M in problems]
    np.testing.assert_allclose(ns["again"].distance, expected, rtol=1e-9)


def check_kernels(ns, values):
    search, best_params, shape, scores = values
    # DistanceKernel on the digits' distances: a gamma_scale is picked, and the
    # refit's gamma_ is it over the median of the off-diagonal distances.
    D_digits, searched = ns["D_digits"], ns["search"]
    assert D_digits.shape == (60, 60) and searched.best_score_ > 0.8
    scale = best_params["distancekernel__gamma_scale"]
    assert scale in (0.3, 1, 3)
    median = np.median(D_digits[~np.eye(60, dtype=bool)])
    assert searched.best_estimator_[0].gamma_ == pytest.approx(scale / median)
    D = ns["D"]  # weighted clouds of different sizes, against themselves
    assert D.shape == (20, 20) and shape == (3, 20)
    assert (np.diag(D) == 0).all() and (D == D.T).all() and (D > 0).sum() == 380
    assert scores.shape == (4,) and np.isfinite(scores).all()  # routed weights
    assert_grid_fits_pipeline(search)
    # The search runs on digits (30 images, 3 of each class, so cv=2).
    X, y = load_digits(return_X_y=True)
    search = clone(search).set_params(cv=2).fit(X[:30], y[:30])
    assert search.predict(X[30:40]).shape == (10,)


def check_neighbors(ns, values):
    # The page's snippets need no setup: they load 60 digits themselves.
    import ot
    from sklearn.cluster import DBSCAN

    X, pixels, graph = ns["X"], ns["pixels"], ns["graph"]
    n_solved, n_pairs = values[0]
    assert n_solved < n_pairs  # it pruned
    indices, data = values[1]
    assert indices[0] == 0 and data[0] == 0 and (np.diff(data) >= 0).all()
    assert values[2] is True  # the page's own brute-force comparison
    # The oracle: each row of the full matrix (pairwise_emd, itself checked
    # against POT in its tests) sorted, ties by index; one distance from POT.
    D = ns["D"]
    order = np.argsort(D, axis=1, kind="stable")[:, :11]
    np.testing.assert_array_equal(graph.indices.reshape(-1, 11), order)
    i, j = 3, graph.indices[graph.indptr[3] + 5]
    cost = ot.dist(pixels, pixels, "euclidean")
    expected = ot.emd2(X[i] / X[i].sum(), X[j] / X[j].sum(), cost)
    np.testing.assert_allclose(graph[i, j], expected, rtol=1e-9)
    # What the page says of scipy: a reduction along rows sorts them by column.
    copy = graph.copy()
    copy.max(axis=1)
    assert (np.diff(copy.data.reshape(-1, 11), axis=1) < 0).any()
    assert (np.diff(graph.data.reshape(-1, 11), axis=1) >= 0).all()
    scores = values[3]
    assert scores.shape == (2,) and scores.min() > 0.5  # chance is 0.1
    assert ns["embedding"].shape == ns["tsne_embedding"].shape == (60, 2)
    assert np.isfinite(ns["tsne_embedding"]).all()
    assert len(set(ns["clusters"])) == 10
    # DBSCAN with eps below every row's largest distance: the full matrix's.
    full = DBSCAN(eps=ns["eps"], min_samples=3, metric="precomputed").fit(D)
    np.testing.assert_array_equal(ns["labels"], full.labels_)
    assert ns["labels"].max() >= 1  # it found clusters
    assert values[5] == 20 * 20  # sinkhorn: every pair
    clouds, weights = ns["clouds"], ns["weights"]
    D = pairwise_emd(
        clouds[:5],
        clouds[5:],
        weights=weights[:5],
        Y_weights=weights[5:],
        metric="euclidean",
    )
    order = np.argsort(D, axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(ns["indices"], order)
    np.testing.assert_allclose(
        ns["distances"], np.take_along_axis(D, order, axis=1), rtol=1e-9, atol=1e-12
    )


def check_parallel(ns, values):
    loky, dask = ns["calls"]
    expected = emd_batch(ns["M"]).distance
    np.testing.assert_array_equal(loky.distance, expected)
    np.testing.assert_array_equal(dask.distance, expected)
    assert ns["tasks_executed"]() > 0  # the dask backend ran on the cluster


def check_solvers(ns, values):
    search = values[0]
    assert_grid_fits_pipeline(search)
    M = np.random.default_rng(3).random((K, N, MM))
    search = clone(search).set_params(cv=3).fit(M, np.arange(K) % 2)
    assert len(search.cv_results_["params"]) == 4  # exact and 3 Sinkhorns
    # partial: equal to POT's partial_wasserstein2 with m=mass.
    import ot

    res = ns["res"]
    assert res.distance.shape == (100,)
    expected = ot.partial.partial_wasserstein2(ns["a"], ns["b"], ns["M"][0], m=0.5)
    np.testing.assert_allclose(res.distance[0], expected, rtol=1e-9)


def check_sparse(ns, values):
    res, M = ns["res"], ns["M"]
    assert res.plan.shape == (K, N * MM)
    plan_3 = ns["plan_3"]
    assert plan_3.shape == (N, MM)
    np.testing.assert_allclose(plan_3.sum(axis=1), np.full(N, 1 / N))
    np.testing.assert_allclose((plan_3 * M[3]).sum(), res.distance[3], rtol=1e-12)


def check_unequal_masses(ns, values):
    # The page's snippets need no setup: they define their own problems.
    M, a, b = ns["M"], ns["a"], ns["b"]
    assert not np.allclose(a.sum(axis=1), b.sum(axis=1))  # unequal masses
    i = 7
    normalised = a[i] / a[i].sum(), b[i] / b[i].sum()
    np.testing.assert_allclose(
        ns["exact"].distance[i], ot.emd2(*normalised, M[i]), rtol=1e-9
    )
    mass = min(a[i].sum(), b[i].sum())
    expected = ot.partial.partial_wasserstein2(a[i], b[i], M[i], m=mass)
    np.testing.assert_allclose(ns["partial"].distance[i], expected, rtol=1e-9)
    assert ns["half"].plan.sum() == pytest.approx(50.0)  # 0.5 moved, 100 times
    res = ns["res"]
    expected = ot.unbalanced.sinkhorn_unbalanced2(a[i], b[i], M[i], 0.05, 1.0)
    np.testing.assert_allclose(res.distance[i], expected, rtol=1e-6)
    # The plans move less than the geometric mean of the masses, and > 0.
    geometric = np.sqrt(a.sum(axis=1) * b.sum(axis=1))
    assert (ns["moved"] > 0).all() and (ns["moved"] < geometric).all()
    search = values[-1]
    assert_grid_fits_pipeline(search)
    assert len(search.cv_results_["params"]) == 2


CHECKS = {
    "README.md": check_readme,
    "getting_started.rst": check_getting_started,
    "index.rst": check_index,
    "user_guide/cli.rst": check_cli,
    "user_guide/dask.rst": check_dask,
    "user_guide/emd.rst": check_emd,
    "user_guide/kernels.rst": check_kernels,
    "user_guide/neighbors.rst": check_neighbors,
    "user_guide/parallel.rst": check_parallel,
    "user_guide/solvers.rst": check_solvers,
    "user_guide/sparse.rst": check_sparse,
    "user_guide/unequal_masses.rst": check_unequal_masses,
}

# Files whose snippets take seconds as users should see them: the README's
# Quickstart grid-searches k=1000 problems of 100x100 and its digits SVM
# grid-searches 300 images; parallel.rst starts 4 loky worker processes (6-13 s
# cold on a loaded 2-core machine); dask.rst grid-searches through a dask
# cluster, whose joblib backend polls its futures (3 s); neighbors.rst and
# kernels.rst solve thousands of digit pairs and grid-search them (2 s each,
# out of the quick loop's minute).
SLOW = {
    "README.md",
    "user_guide/parallel.rst",
    "user_guide/dask.rst",
    "user_guide/neighbors.rst",
    "user_guide/kernels.rst",
}


@pytest.fixture
def dask_client(monkeypatch):
    """``distributed.Client(any address)`` connects to an in-process cluster.

    The fixture's value is that Client class; its ``executed()`` counts the
    tasks the workers of every cluster it started have run.
    """
    clusters, clients = [], []

    class LocalClient(distributed.Client):
        def __init__(self, address=None, *args, **kwargs):
            cluster = distributed.LocalCluster(
                n_workers=1,
                threads_per_worker=2,
                processes=False,
                dashboard_address=None,
                # No dashboard, and the scheduler's HTTP routes on a free port
                # rather than 8787, which another cluster may hold.
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            )
            clusters.append(cluster)
            super().__init__(cluster, *args, **kwargs)
            clients.append(self)

    monkeypatch.setattr(distributed, "Client", LocalClient)

    def executed():
        return sum(
            worker.state.executed_count
            for cluster in clusters
            for worker in cluster.workers.values()
        )

    LocalClient.executed = staticmethod(executed)
    yield LocalClient
    for client in clients:
        client.close()
    for cluster in clusters:
        cluster.close()


def _param(path):
    marks = [pytest.mark.slow] if doc_id(path) in SLOW else []
    return pytest.param(path, marks=marks, id=doc_id(path))


# Every file with a python block; a new file with none of its own setup runs too.
PARAMS = [_param(path) for path in DOC_FILES if code_blocks(path)]


@pytest.mark.parametrize("path", PARAMS)
# joblib's dask backend forgets its scattered arrays (a _WeakKeyDictionary
# cleared after each call); an array collected later runs a weakref callback
# that deletes its entry again and raises KeyError, which Python ignores.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <function _WeakKeyDictionary.__setitem__"
    ".<locals>.on_destroy:pytest.PytestUnraisableExceptionWarning"
)
def test_snippets_run(path, tmp_path, monkeypatch, dask_client):
    monkeypatch.chdir(tmp_path)
    name = doc_id(path)
    namespace = SETUPS.get(name, lambda client: {})(dask_client)
    namespace["__name__"] = "__docs__"
    # A snippet may change scikit-learn's global configuration (metadata
    # routing): the context restores it afterwards.
    with sklearn.config_context():
        values = run_blocks(path, namespace)
    CHECKS.get(name, lambda ns, values: None)(namespace, values)


def test_extractor_finds_every_snippet():
    found = {doc_id(path): len(code_blocks(path)) for path in DOC_FILES}
    for name, count in MIN_BLOCKS.items():
        assert found.get(name, 0) >= count, (name, found)
    assert sum(found.values()) >= sum(MIN_BLOCKS.values())
    assert set(SETUPS) | set(CHECKS) <= set(found)


def test_rst_extractor_reads_options_nesting_and_blank_lines_only_of_python():
    text = textwrap.dedent(
        """\
        Text.

        - A list item:

          .. code-block:: python
             :caption: nested

             x = 1

             y = x + 1
          back in the item

        .. code-block:: bash

           echo no

        .. code-block:: python

           z = 3
        """
    )
    assert rst_blocks(text) == [(8, "x = 1\n\ny = x + 1"), (19, "z = 3")]


def test_markdown_extractor_reads_python_fences_only():
    text = "Text.\n\n```bash\necho no\n```\n\n```python\nx = 1\n\ny = 2\n```\n"
    text += "\n- item:\n\n  ```python\n  z = 3\n  ```\n"
    assert markdown_blocks(text) == [(8, "x = 1\n\ny = 2"), (16, "z = 3")]
