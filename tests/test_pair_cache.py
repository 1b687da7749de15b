"""The pair cache behind PairwiseEMDTransformer(memory=...): keys, bounds, faults.

Each test checks values against the uncached transformer (itself checked
against ``ot.emd2`` in test_pairwise.py) or POT directly; the fault tests
damage the store, delete it, share it between processes or kill a writer.
"""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tracemalloc
import warnings
from contextlib import closing

import joblib
import numpy as np
import ot
import pytest

import skemd._pair_cache
import skemd._pairwise
from skemd import PairwiseEMDTransformer
from skemd._pair_cache import FILENAME, PairCache, PairCacheWarning, sample_keys

GRID = np.indices((8, 8)).reshape(2, -1).T.astype(float)


@pytest.fixture
def no_cache_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", PairCacheWarning)
        yield


def histograms(rng, n, bins=6):
    X = rng.random((n, bins))
    X[X < 0.2] = 0
    X[:, 0] += 0.1
    return X / X.sum(axis=1, keepdims=True)


def sql(path, statement="SELECT count(*) FROM pairs"):
    """Run one statement on the store with raw sqlite3; return its rows."""
    with closing(sqlite3.connect(path)) as db, db:
        return db.execute(statement).fetchall()


def test_cloud_keys_cover_the_sample_shape(rng, tmp_path, no_cache_warnings):
    # The same bytes read as clouds of 4 points in 2-d, then 2 points in 4-d.
    X = rng.random((5, 8))
    for shape in [(5, 4, 2), (5, 2, 4)]:
        clouds = X.reshape(shape)
        D = PairwiseEMDTransformer(memory=tmp_path).fit_transform(clouds)
        w = np.full(shape[1], 1 / shape[1])
        expected = [[ot.emd2(w, w, ot.dist(x, y)) for y in clouds] for x in clouds]
        np.testing.assert_allclose(D, expected, rtol=1e-9, atol=1e-12)


def test_sample_keys_cover_dtype_shape_and_bytes():
    X = np.arange(8.0).reshape(1, 8)
    changed = X.copy()
    changed[0, 3] = np.nextafter(3.0, 4.0)
    keys = {
        sample_keys(X)[0],
        sample_keys(X.reshape(1, 4, 2))[0],
        sample_keys(X.reshape(1, 2, 4))[0],
        sample_keys(X.astype(np.float32))[0],
        sample_keys(changed)[0],
    }
    assert len(keys) == 5
    assert sample_keys(np.vstack([X, X])) == [sample_keys(X)[0]] * 2


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"method": "sinkhorn", "reg": 0.5}, {"method": "sinkhorn", "reg": 1.0}),
        ({"method": "sinkhorn", "reg": 0.5}, {"method": "exact"}),
        ({"method": "partial", "method_params": {"mass": 0.5}}, {"method": "partial"}),
        ({"metric": "cityblock"}, {"metric": "sqeuclidean"}),
        ({"support": np.arange(6.0) ** 2}, {}),
        ({"ground_cost": np.ones((6, 6)) - np.eye(6)}, {}),
    ],
)
def test_keys_cover_method_parameters_and_ground_space(
    rng, tmp_path, first, second, solved
):
    X = histograms(rng, 7)
    D = PairwiseEMDTransformer(memory=tmp_path, **second).fit_transform(X)
    alone = sum(solved)  # with an empty store
    shutil.rmtree(tmp_path)
    skemd._pair_cache._RECENT.clear()  # and this process's memo of that store
    PairwiseEMDTransformer(memory=tmp_path, **first).fit_transform(X)
    solved.clear()
    D = PairwiseEMDTransformer(memory=tmp_path, **second).fit_transform(X)
    assert sum(solved) == alone >= 7 * 6 // 2  # nothing served from the first
    np.testing.assert_array_equal(D, PairwiseEMDTransformer(**second).fit_transform(X))


def test_asymmetric_pairs_are_keyed_by_direction(rng, tmp_path, solved):
    C = rng.random((6, 6))
    A, B = histograms(rng, 4), histograms(rng, 3)
    AB = PairwiseEMDTransformer(ground_cost=C, memory=tmp_path).fit(B).transform(A)
    BA = PairwiseEMDTransformer(ground_cost=C, memory=tmp_path).fit(A).transform(B)
    assert solved == [12, 12]  # the mirrored pairs are other pairs
    expected = np.array([[ot.emd2(a, b, C) for b in B] for a in A])
    np.testing.assert_allclose(AB, expected, rtol=1e-9, atol=1e-12)
    expected = np.array([[ot.emd2(b, a, C) for a in A] for b in B])
    np.testing.assert_allclose(BA, expected, rtol=1e-9, atol=1e-12)
    assert not np.allclose(AB, BA.T)


@pytest.mark.slow
def test_process_memory_does_not_grow_with_the_store(rng, tmp_path, monkeypatch):
    monkeypatch.setattr(skemd._pair_cache, "RECENT_ENTRIES", 1000)  # the memo's cap

    # Histograms on a line use the closed form: the fits cost the cache only.
    def fit():
        X = rng.random((100, 10))
        PairwiseEMDTransformer(metric="cityblock", memory=tmp_path).fit_transform(X)

    fit()
    tracemalloc.start()
    try:
        fit()
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
            fit()
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert sql(tmp_path / FILENAME) == [(7 * 100 * 99 // 2,)]
    assert grown < 1 << 20  # the shard index grew by 4 MB here (160 B a pair)


def test_size_cap_evicts_the_least_recently_used(rng, tmp_path, monkeypatch):
    monkeypatch.setattr(skemd._pair_cache, "MAX_ENTRIES", 20)
    monkeypatch.setattr(skemd._pair_cache, "RECENT_ENTRIES", 0)  # every use recorded
    monkeypatch.setattr(skemd._pair_cache, "FRESH", 0)  # record every use
    path = tmp_path / FILENAME
    cache = PairCache(path, b"config", symmetric=True)
    keys = sample_keys(rng.random((40, 3)))
    old = np.column_stack([np.zeros(20, int), np.arange(1, 21)])
    cache.store(keys, keys, old, np.arange(20.0))
    np.testing.assert_array_equal(cache.lookup(keys, keys, old[:5]), np.arange(5.0))
    new = np.column_stack([np.ones(10, int), np.arange(21, 31)])
    cache.store(keys, keys, new, np.arange(10.0))
    assert sql(path) == [(20,)] == sql(path, "SELECT entries FROM size")
    found = ~np.isnan(cache.lookup(keys, keys, np.vstack([old, new])))
    assert found[:5].all() and found[20:].all()  # recently used, and new
    assert found[5:20].sum() == 5
    # Through the transformer: the cap holds and the values stay right.
    X = histograms(rng, 10)
    D = PairwiseEMDTransformer(memory=tmp_path).fit_transform(X)
    assert sql(path) == [(20,)]
    np.testing.assert_array_equal(D, PairwiseEMDTransformer().fit_transform(X))


def _truncate(path):
    os.truncate(path, os.path.getsize(path) // 2)


def _garbage_header(path):
    with open(path, "r+b") as f:
        f.write(np.random.default_rng(0).bytes(100))


def _garbage_pages(path):
    with open(path, "r+b") as f:
        f.seek(4096)
        f.write(np.random.default_rng(0).bytes(os.path.getsize(path) - 4096))


def _foreign(path):
    path.unlink()
    sql(path, "CREATE TABLE notes (text TEXT)")


def _forged_value(path):
    one = "(SELECT max(pair) FROM pairs)"
    sql(path, f"UPDATE pairs SET value = value + 1 WHERE pair = {one}")


def _dropped_table(path):
    sql(path, "DROP TABLE pairs")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_truncate, "malformed"),
        (_garbage_header, "not a database"),
        (_garbage_pages, "malformed"),
        (_foreign, "not a skemd pair cache of version 1"),
        (_forged_value, "does not match its checksum"),
        (_dropped_table, "no such table"),
    ],
)
def test_corrupt_store_is_named_moved_aside_and_rebuilt(
    rng, tmp_path, solved, damage, reason
):
    X = histograms(rng, 8)
    expected = PairwiseEMDTransformer().fit_transform(X)
    PairwiseEMDTransformer(memory=tmp_path).fit_transform(X)
    path = tmp_path / FILENAME
    assert not os.path.exists(f"{path}-wal")  # all in the file damaged next
    damage(path)
    skemd._pair_cache._RECENT.clear()  # as a new process would: read from disk
    solved.clear()
    with pytest.warns(PairCacheWarning, match=reason) as record:
        D = PairwiseEMDTransformer(memory=tmp_path).fit_transform(X)
    np.testing.assert_array_equal(D, expected)
    assert sum(solved) == 8 * 7 // 2  # nothing served from the damaged store
    (warning,) = record
    assert str(path) in str(warning.message)
    assert warning.filename == __file__  # the user's line
    assert os.path.exists(f"{path}.corrupt")
    skemd._pair_cache._RECENT.clear()
    solved.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", PairCacheWarning)
        again = PairwiseEMDTransformer(memory=tmp_path).fit_transform(X)
    np.testing.assert_array_equal(again, expected)
    assert solved == [0]  # the rebuilt store serves every pair


@pytest.mark.parametrize("memory", ["a-file", "a-file/below"])
def test_memory_on_a_regular_file_fails_at_fit_start(rng, tmp_path, memory, solved):
    (tmp_path / "a-file").write_text("not a directory")
    est = PairwiseEMDTransformer(memory=str(tmp_path / memory), output="kernel")
    with pytest.raises(ValueError, match=r"must be a directory .* is a file"):
        est.fit(histograms(rng, 5))
    assert solved == []  # nothing solved before the error


def test_memory_accepts_paths_and_joblib_memory(rng, tmp_path, solved):
    X = histograms(rng, 5)
    expected = PairwiseEMDTransformer().fit_transform(X)
    for memory in [tmp_path, joblib.Memory(tmp_path, verbose=0), str(tmp_path)]:
        D = PairwiseEMDTransformer(memory=memory).fit_transform(X)
        np.testing.assert_array_equal(D, expected)
    assert solved == [10, 10, 0, 0]
    assert sql(tmp_path / FILENAME) == [(10,)]
    PairwiseEMDTransformer(memory=joblib.Memory(None)).fit_transform(X)
    assert solved[-1] == 10  # a Memory without location caches nothing


@pytest.mark.parametrize("when", ["before storing", "during the lookup"])
def test_store_deleted_during_a_fit(rng, tmp_path, monkeypatch, when):
    memory = tmp_path / "cache"
    X = histograms(rng, 12)
    expected = PairwiseEMDTransformer().fit_transform(X)
    PairwiseEMDTransformer(memory=memory).fit_transform(X[:8])  # a store to delete
    calls = []
    if when == "before storing":
        solve_pairs = skemd._pairwise.solve_pairs

        def deleting(*args):
            shutil.rmtree(memory)
            return solve_pairs(*args)

        monkeypatch.setattr(skemd._pairwise, "solve_pairs", deleting)
    else:  # with the connection open, between batches of keys
        monkeypatch.setattr(skemd._pair_cache, "BATCH", 10)
        select = PairCache._select

        def deleting(self, db, keys, *args):
            calls.append(len(keys))
            if len(calls) == 2:
                shutil.rmtree(memory)
            return select(self, db, keys, *args)

        monkeypatch.setattr(PairCache, "_select", deleting)
    D = PairwiseEMDTransformer(memory=memory).fit_transform(X)
    np.testing.assert_array_equal(D, expected)
    # A new store holds the pairs solved: all but the 8 * 7 / 2 stored before.
    assert sql(memory / FILENAME) == [(12 * 11 // 2 - 8 * 7 // 2,)]


WORKER = """
import sys, warnings
import numpy as np
from skemd import PairwiseEMDTransformer
from skemd._pair_cache import PairCacheWarning

warnings.simplefilter("error", PairCacheWarning)
memory, data, seed = sys.argv[1:]
with np.load(data) as saved:
    X, C, symmetric, asymmetric = (saved[k] for k in ("X", "C", "sym", "asym"))
rng = np.random.default_rng(int(seed))
for fit in range(15):
    i = np.sort(rng.choice(len(X), 12, replace=False))
    cost, expected = (C, asymmetric) if fit % 3 == 2 else (None, symmetric)
    est = PairwiseEMDTransformer(support=None if fit % 3 == 2 else {grid},
                                 ground_cost=cost, memory=memory)
    np.testing.assert_allclose(est.fit_transform(X[i]), expected[np.ix_(i, i)],
                               rtol=1e-9, atol=1e-12)
print("ok", flush=True)
"""


def double_loop(H, C):
    return np.array([[ot.emd2(a, b, C) for b in H] for a in H])


@pytest.mark.slow
def test_three_processes_share_one_store(rng, tmp_path):
    H = histograms(rng, 24, bins=64)
    C = rng.random((64, 64))
    data = tmp_path / "data.npz"
    sym, asym = double_loop(H, ot.dist(GRID, GRID)), double_loop(H, C)
    np.savez(data, X=H, C=C, sym=sym, asym=asym)
    script = WORKER.replace("{grid}", "np.indices((8, 8)).reshape(2, -1).T * 1.0")
    memory = tmp_path / "cache"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(memory), str(data), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(3)
    ]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        assert out.strip() == "ok"
    stored = sql(memory / FILENAME)[0][0]
    assert 0 < stored <= 24 * 23 // 2 + 24 * 24
    assert sql(memory / FILENAME, "PRAGMA integrity_check") == [("ok",)]


WRITER = """
import sqlite3, sys, time
import numpy as np
from skemd import PairwiseEMDTransformer
from skemd._pair_cache import WRITE_BATCH, PairCache, sample_keys, store_path

memory, data, stop_in = sys.argv[1:]
with np.load(data) as saved:
    X = saved["X"]
PairwiseEMDTransformer(memory=memory).fit_transform(X)
begun, connect = [], sqlite3.connect


def pausing_connect(*args, **kwargs):
    # Stop inside the write transaction number stop_in, rows half inserted and
    # spilled to the WAL by a tiny page cache, and wait there to be killed.
    db = connect(*args, **kwargs)
    db.execute("PRAGMA cache_size = 5")
    db.set_trace_callback(lambda sql: sql.startswith("BEGIN") and begun.append(1))
    steps = []

    def progress():
        if len(begun) == int(stop_in) and db.in_transaction:
            steps.append(1)
            if len(steps) == 2000:
                print("mid-write", flush=True)
                time.sleep(600)
        return 0

    db.set_progress_handler(progress, 100)
    return db


sqlite3.connect = pausing_connect
rng = np.random.default_rng(0)
keys = sample_keys(rng.random((300, 4)))
pairs = np.column_stack(np.triu_indices(300, 1))
assert len(pairs) > 2 * WRITE_BATCH
PairCache(store_path(memory), b"other", symmetric=True).store(
    keys, keys, pairs, rng.random(len(pairs))
)
"""


@pytest.mark.slow
@pytest.mark.parametrize("stop_in", [1, 2])
def test_writer_killed_mid_store_leaves_a_usable_store(
    rng, tmp_path, stop_in, solved, no_cache_warnings
):
    X = histograms(rng, 15)
    data = tmp_path / "data.npz"
    np.savez(data, X=X)
    memory = tmp_path / "cache"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(memory), str(data), str(stop_in)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "mid-write"
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    wal = tmp_path / "cache" / f"{FILENAME}-wal"
    assert wal.stat().st_size > 0  # holds the killed transaction's pages
    D = PairwiseEMDTransformer(memory=memory).fit_transform(X)
    np.testing.assert_array_equal(D, PairwiseEMDTransformer().fit_transform(X))
    assert solved == [0, 15 * 14 // 2]  # served every pair; then the uncached run
    assert sql(memory / FILENAME, "PRAGMA integrity_check") == [("ok",)]
    # The transactions committed before the kill are whole, the killed one gone.
    committed = 15 * 14 // 2 + (stop_in - 1) * skemd._pair_cache.WRITE_BATCH
    assert sql(memory / FILENAME) == [(committed,)]
    assert sql(memory / FILENAME, "SELECT entries FROM size") == [(committed,)]
