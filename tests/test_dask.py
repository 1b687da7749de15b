"""The same code on a real dask.distributed cluster: identical results."""

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skemd import (
    BatchEMDTransformer,
    EMDNeighborsTransformer,
    PairwiseEMDTransformer,
    emd_batch,
    pairwise_emd,
)
from skemd._cli import main

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _on_cluster(fit):
    with joblib.parallel_config(backend="dask"):
        return fit()


@pytest.mark.slow
@pytest.mark.parametrize("return_plan", [False, "dense", "sparse"])
def test_emd_batch_is_identical_on_the_cluster(client, return_plan):
    rng = np.random.default_rng(0)
    M = rng.random((200, 12, 10))
    b = rng.dirichlet(np.ones(10), size=200)
    local = emd_batch(M, b=b, return_plan=return_plan, n_jobs=2)
    with distributed.get_task_stream(client) as tasks:
        remote = _on_cluster(
            lambda: emd_batch(M, b=b, return_plan=return_plan, n_jobs=-1)
        )
    assert tasks.data  # the chunks were solved by the cluster's workers
    np.testing.assert_array_equal(remote.distance, local.distance)
    if return_plan == "dense":
        np.testing.assert_array_equal(remote.plan, local.plan)
    elif return_plan == "sparse":
        assert (remote.plan != local.plan).nnz == 0


@pytest.mark.slow
def test_pairwise_and_neighbour_graphs_are_identical_on_the_cluster(client):
    rng = np.random.default_rng(2)
    X = rng.dirichlet(np.ones(16), size=80)
    support = np.indices((4, 4)).reshape(2, -1).T.astype(float)
    neighbours = EMDNeighborsTransformer(n_neighbors=5, support=support, n_jobs=2)
    local = neighbours.fit_transform(X), pairwise_emd(X, support=support, n_jobs=2)
    with distributed.get_task_stream(client) as tasks:
        remote = _on_cluster(
            lambda: (
                neighbours.set_params(n_jobs=-1).fit_transform(X),
                pairwise_emd(X, support=support, n_jobs=-1),
            )
        )
    assert tasks.data  # the pairs were solved by the cluster's workers
    assert (remote[0] != local[0]).nnz == 0
    np.testing.assert_array_equal(remote[1], local[1])


@pytest.mark.slow
def test_transformers_and_grid_search_run_on_the_cluster(client):
    rng = np.random.default_rng(1)
    M = rng.random((120, 8, 8))
    y = (M[:, :4].mean(axis=(1, 2)) > M[:, 4:].mean(axis=(1, 2))).astype(int)
    X_hist = rng.random((40, 6))
    pairwise = PairwiseEMDTransformer(support=np.arange(6.0)[:, None] ** 1.5)
    search = GridSearchCV(
        make_pipeline(BatchEMDTransformer(output="plan"), LogisticRegression()),
        {"logisticregression__C": [0.1, 10.0]},
        cv=3,
        n_jobs=-1,
    )
    local = (
        BatchEMDTransformer(n_jobs=2).fit_transform(M),
        pairwise.fit_transform(X_hist),
        search.fit(M, y).cv_results_["mean_test_score"],
    )
    with distributed.get_task_stream(client) as tasks:
        remote = _on_cluster(
            lambda: (
                BatchEMDTransformer(n_jobs=-1).fit_transform(M),
                pairwise.set_params(n_jobs=-1).fit_transform(X_hist),
                search.fit(M, y).cv_results_["mean_test_score"],
            )
        )
    for got, expected in zip(remote, local, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert len({task["worker"] for task in tasks.data}) == 2  # both workers worked


@pytest.mark.slow
def test_cli_solves_through_a_scheduler_address(client, tmp_path, capsys):
    M = np.random.default_rng(2).random((100, 5, 5))
    np.save(tmp_path / "M.npy", M)
    argv = ["solve", str(tmp_path / "M.npy"), "-o", str(tmp_path / "out.npz")]
    argv += ["--backend", "dask", "--scheduler", client.scheduler.address, "--quiet"]
    assert main(argv) == 0
    with np.load(tmp_path / "out.npz") as saved:
        np.testing.assert_array_equal(saved["distance"], emd_batch(M).distance)
