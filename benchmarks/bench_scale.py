"""Issue #6's figures: streaming a memmap of a million problems, and dask.

1. k=10^6 problems of 10x10 in a read-only memmap (800 MB), distances only:
   time and peak memory with local threads and on a 2-worker
   ``distributed.LocalCluster``, each in a fresh process. Peak memory is the
   growth of the process's RSS during the solve, sampled every 5 ms (the
   interpreter and imports come before), set against the size of M, of the output and of a
   chunk. A loop of ``ot.emd2`` over the first 10^4 problems, timed in the same
   run, is scaled to 10^6 as the baseline.
2. The seed's case (k=1000, n=100, POT issue #598): local threads against the
   same code under ``joblib.parallel_config(backend="dask")``, cluster warm.

Run: ``python benchmarks/bench_scale.py [--k 1000000]``
"""

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import ot

_SOLVE = textwrap.dedent(
    """
    import json, sys, threading, time
    import joblib, numpy as np, psutil
    from skemd import emd_batch

    def sample_rss(peak, stop):
        process = psutil.Process()
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.005)

    path, backend = sys.argv[1], sys.argv[2]
    M = np.load(path, mmap_mode="r")
    children = None
    if backend == "dask":
        from distributed import Client, LocalCluster
        cluster = LocalCluster(n_workers=2, threads_per_worker=1,
                               dashboard_address=None)
        client = Client(cluster)
    with joblib.parallel_config(backend=backend):
        emd_batch(M[:100], n_jobs=-1)  # warm up
        before = psutil.Process().memory_info().rss
        peak, stop = [before], threading.Event()
        sampler = threading.Thread(target=sample_rss, args=(peak, stop))
        sampler.start()
        start = time.perf_counter()
        res = emd_batch(M, n_jobs=-1)
        seconds = time.perf_counter() - start
        stop.set(); sampler.join()
    if backend == "dask":
        children = max(client.run(
            lambda: __import__("psutil").Process().memory_info().rss).values())
        client.close(); cluster.close()
    print(json.dumps({"seconds": seconds, "growth": peak[0] - before,
                      "before": before, "workers": children,
                      "checksum": float(res.distance.sum())}))
    """
)

_SEED = textwrap.dedent(
    """
    import json, sys, time
    import joblib, numpy as np
    from distributed import Client, LocalCluster
    from skemd import emd_batch

    M = np.random.default_rng(0).random((1000, 100, 100))
    a = np.random.default_rng(1).dirichlet(np.ones(100))
    def best(fn, repeat=5):
        times = []
        for _ in range(repeat):
            start = time.perf_counter(); fn(); times.append(time.perf_counter() - start)
        return float(np.median(times))
    cases = {"uniform, plans": dict(return_plan=True),
             "uniform, distances": dict(),
             "non-uniform a, distances": dict(a=a, b=np.full(100, 0.01))}
    rows = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as c, \\
            Client(c):
        for name, kw in cases.items():
            local = best(lambda: emd_batch(M, n_jobs=2, **kw))
            with joblib.parallel_config(backend="dask"):
                emd_batch(M, n_jobs=-1, **kw)  # warm the workers
                dask = best(lambda: emd_batch(M, n_jobs=-1, **kw))
            rows[name] = (local, dask)
    print(json.dumps(rows))
    """
)


def _make_memmap(path, k, n, block=100_000):
    M = np.lib.format.open_memmap(path, "w+", np.float64, (k, n, n))
    for start in range(0, k, block):
        stop = min(start + block, k)
        M[start:stop] = np.random.default_rng(start).random((stop - start, n, n))
    M.flush()


def _run(script, *args):
    out = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.splitlines()[-1])


def _mb(nbytes):
    return f"{nbytes / 1e6:7.1f} MB"


def streaming(k, n=10):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "M.npy"
        _make_memmap(path, k, n)
        M = np.load(path, mmap_mode="r")
        sample = min(k, 10_000)
        u = np.full(n, 1.0 / n)
        start = time.perf_counter()
        for i in range(sample):
            ot.emd2(u, u, M[i])
        loop = (time.perf_counter() - start) * k / sample
        runs = {
            backend: _run(_SOLVE, path, backend) for backend in ("threading", "dask")
        }
    size, output, chunk = k * n * n * 8, k * 9, (1 << 20) * 8
    print(f"k={k:,} problems of {n}x{n} from a read-only memmap, distances only")
    print(
        f"  M: {_mb(size)}   output (distance + converged): {_mb(output)}   "
        f"largest chunk: {_mb(chunk)}"
    )
    print(f"  loop of ot.emd2 (scaled from {sample:,}): {loop:8.2f} s")
    for backend, r in runs.items():
        workers = (
            f", each worker's RSS after: {_mb(r['workers'])}" if r["workers"] else ""
        )
        print(
            f"  {backend:9s}: {r['seconds']:6.2f} s ({loop / r['seconds']:5.1f}x the loop)"
            f"  peak RSS growth {_mb(r['growth'])} = {r['growth'] / size:.1%} of M"
            f"{workers}"
        )
    same = runs["threading"]["checksum"] == runs["dask"]["checksum"]
    print(f"  identical distances on both backends: {same}")


def dask_overhead():
    rows = _run(_SEED)
    print(
        "\nThe seed's case, k=1000 n=100: local threads against a 2-worker LocalCluster"
    )
    for name, (local, dask) in rows.items():
        print(
            f"  {name:26s}: threads {local:6.3f} s   dask {dask:6.3f} s   "
            f"overhead {dask / local:4.2f}x"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=1_000_000)
    args = parser.parse_args()
    streaming(args.k)
    dask_overhead()
