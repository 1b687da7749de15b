"""Chunking and dispatch follow joblib's and sklearn's conventions."""

import joblib
import numpy as np
import pytest

from skemd import emd_batch
from skemd._engine import chunk_bounds, map_chunks
from skemd._validation import check_batch


@pytest.mark.parametrize(
    ("k", "batch_size"), [(0, 3), (1, 3), (10, 3), (9, 3), (5, 100)]
)
def test_chunk_bounds_cover_range_in_order(k, batch_size):
    bounds = chunk_bounds(k, batch_size=batch_size)
    covered = [i for start, stop in bounds for i in range(start, stop)]
    assert covered == list(range(k))
    assert all(stop - start <= batch_size for start, stop in bounds)


def test_auto_chunks_follow_effective_n_jobs():
    assert chunk_bounds(1000) == [(0, 1000)]  # n_jobs=None means 1
    assert len(chunk_bounds(1000, n_jobs=2)) == 8
    with joblib.parallel_config(n_jobs=2):
        assert len(chunk_bounds(1000)) == 8  # None defers to the context
    assert len(chunk_bounds(3, n_jobs=2)) == 3  # never an empty chunk


def test_auto_chunks_are_capped_in_memory():
    bounds = chunk_bounds(10**6, cells_per_problem=100)
    assert max(stop - start for start, stop in bounds) * 100 <= 1 << 20


def test_threading_backend_passes_views_not_copies(rng):
    M = rng.random((40, 5, 5))
    batch = check_batch(M)
    with joblib.parallel_config(backend="threading"):
        shared = list(
            map_chunks(
                lambda chunk: np.shares_memory(chunk.costs, M),
                batch,
                chunk_bounds(40, batch_size=10),
                n_jobs=2,
            )
        )
    assert [ok for _, ok in shared] == [True] * 4


def test_one_task_per_chunk(rng, monkeypatch):
    import skemd._driver

    sizes = []
    solve = skemd._driver.solve_chunk

    def spy(chunk, **kwargs):
        sizes.append(len(chunk))
        return solve(chunk, **kwargs)

    monkeypatch.setattr(skemd._driver, "solve_chunk", spy)
    emd_batch(rng.random((1000, 4, 4)), n_jobs=2)
    assert sorted(sizes) == [125] * 8


def test_verbose_reports_per_chunk_not_per_problem(rng, capfd):
    M = rng.random((2000, 4, 4))
    emd_batch(M, n_jobs=2)
    assert capfd.readouterr().err == ""
    emd_batch(M, n_jobs=2, verbose=2)  # 1 is skemd's bar; joblib's from 2
    err = capfd.readouterr().err
    assert "Done   8 out of   8" in err  # 8 chunks, not 2000 problems
    assert err.count("[Parallel(") <= 3
