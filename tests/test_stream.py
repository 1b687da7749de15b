"""Streaming: iter_emd_batch, out=, and memmapped batches larger than memory."""

import json
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skemd import emd_batch, iter_emd_batch
from skemd._memmap import release_pages


@pytest.mark.parametrize("return_plan", [False, "dense", "sparse"])
@pytest.mark.parametrize("ordered", [True, False])
def test_chunks_join_to_the_whole_batch(rng, return_plan, ordered):
    M = rng.random((50, 6, 5))
    b = rng.dirichlet(np.ones(5), size=50)
    whole = emd_batch(M, b=b, return_plan=return_plan)
    distance = np.full(50, np.nan)
    seen = []
    for rows, res in iter_emd_batch(
        M, b=b, return_plan=return_plan, batch_size=8, n_jobs=2, ordered=ordered
    ):
        seen.append((rows.start, rows.stop))
        distance[rows] = res.distance
        assert res.converged.all()
        if return_plan == "dense":
            np.testing.assert_array_equal(res.plan, whole.plan[rows])
        elif return_plan == "sparse":
            assert (res.plan != whole.plan[rows]).nnz == 0
        else:
            assert res.plan is None
    assert sorted(seen) == [(s, min(s + 8, 50)) for s in range(0, 50, 8)]
    np.testing.assert_array_equal(distance, whole.distance)


def test_given_chunks_only_are_solved(rng):
    M = rng.random((30, 4, 4))
    solved = list(iter_emd_batch(M, chunks=[(20, 30), (0, 5)]))
    assert [(rows.start, rows.stop) for rows, _ in solved] == [(20, 30), (0, 5)]
    np.testing.assert_array_equal(solved[0][1].distance, emd_batch(M[20:30]).distance)


@pytest.mark.parametrize("chunk", [(0, 31), (5, 5), (-1, 3)])
def test_chunks_outside_the_batch_raise_before_solving(rng, chunk):
    with pytest.raises(ValueError, match=r"0 <= start < stop <= k=30"):
        iter_emd_batch(rng.random((30, 4, 4)), chunks=[chunk])


def test_bad_input_raises_at_the_call_not_at_the_first_chunk(rng):
    M = rng.random((10, 3, 3))
    M[7, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"M\[7\]"):
        iter_emd_batch(M)


def test_one_convergence_warning_after_the_last_chunk(rng):
    M = rng.random((20, 30, 30))
    chunks = iter_emd_batch(M, a=rng.dirichlet(np.ones(30)), max_iter=2, batch_size=5)
    with pytest.warns(ConvergenceWarning, match="20 of 20 problems"):
        results = [res for _, res in chunks]
    assert not any(res.converged.any() for res in results)


def test_ragged_chunks(rng):
    M = [rng.random((n, n + 1)) for n in (2, 3, 4, 5)]
    chunks = list(iter_emd_batch(M, return_plan="sparse", batch_size=3))
    assert [len(res.plan) for _, res in chunks] == [3, 1]
    assert chunks[1][1].plan[0].shape == (5, 6)


def test_out_receives_the_distances(rng, tmp_path):
    M = rng.random((40, 5, 5))
    out = np.lib.format.open_memmap(tmp_path / "d.npy", "w+", np.float64, (40,))
    res = emd_batch(M, out=out, n_jobs=2)
    assert res.distance is out
    out.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "d.npy"), emd_batch(M).distance)


@pytest.mark.parametrize(
    "out", [np.zeros(39), np.zeros(40, np.float32), np.zeros((40, 1)), [0.0] * 40]
)
def test_bad_out_raises(rng, out):
    with pytest.raises(ValueError, match=r"out must be a writable float64|'out' param"):
        emd_batch(rng.random((40, 5, 5)), out=out)


# loky's worker processes start in seconds: slow, as in test_progress.py.
@pytest.mark.parametrize(
    "backend", ["threading", pytest.param("loky", marks=pytest.mark.slow)]
)
def test_memmapped_costs_equal_in_memory_costs(rng, tmp_path, backend):
    M = rng.random((300, 8, 8)).astype(np.float32)
    np.save(tmp_path / "M.npy", M)
    mapped = np.load(tmp_path / "M.npy", mmap_mode="r")
    with joblib.parallel_config(backend=backend):
        res = emd_batch(mapped, return_plan="sparse", n_jobs=2, batch_size=64)
    np.testing.assert_array_equal(res.distance, emd_batch(M).distance)
    assert np.array_equal(np.load(tmp_path / "M.npy"), M)  # the file is untouched


def test_only_read_only_mappings_are_released(tmp_path):
    np.save(tmp_path / "M.npy", np.ones((4, 2, 2)))
    assert release_pages(np.load(tmp_path / "M.npy", mmap_mode="r"))
    writable = np.load(tmp_path / "M.npy", mmap_mode="r+")
    copy_on_write = np.load(tmp_path / "M.npy", mmap_mode="c")
    copy_on_write[0] = 5.0
    assert not release_pages(writable)
    assert not release_pages(copy_on_write)
    assert copy_on_write[0, 0, 0] == 5.0


# Run in a fresh interpreter so that its peak RSS is this solve's alone.
_PEAK_RSS_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    from skemd import emd_batch

    M = np.load(sys.argv[1], mmap_mode="r")
    rows = json.loads(sys.argv[2])
    emd_batch(M[:10], n_jobs=2)  # warm up imports and thread pools
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    res = emd_batch(M, n_jobs=2)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "growth": (after - before) * 1024,
        "converged": int(res.converged.sum()),
        "smallest": res.distance.min(),
        "sample": res.distance[rows].tolist(),
    }))
    """
)


@pytest.mark.slow
def test_memmapped_batch_streams_in_bounded_memory(tmp_path):
    import ot

    k = 200_000  # 160 MB of costs: a whole copy is 2.5 times the bound below
    M = np.lib.format.open_memmap(tmp_path / "M.npy", "w+", np.float64, (k, 10, 10))
    for start in range(0, k, 50_000):
        M[start : start + 50_000] = np.random.default_rng(start).random(
            (50_000, 10, 10)
        )
    M.flush()
    # Rows spread over the whole batch, each solved here by POT alone.
    rows = [*range(0, k, 7919), k - 1]
    uniform = np.full(10, 0.1)
    expected = [ot.emd2(uniform, uniform, M[i]) for i in rows]
    del M
    run = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS_SCRIPT, str(tmp_path / "M.npy"), str(rows)],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(run.stdout)
    assert report["growth"] < 0.4 * k * 800  # well under the size of M
    # All k problems were solved, and the sampled ones equal POT's values.
    assert report["converged"] == k
    assert report["smallest"] > 0  # no row left as allocated
    np.testing.assert_allclose(report["sample"], expected, rtol=1e-9, atol=0)
