"""Issue #3's target table: skemd against the seed's methods and the limit.

One command prints every row, all measured in this run on this machine:

- k=1000 n=100 uniform plans: against the seed's loop and warm joblib;
- k=1000 n=100 non-uniform plans: against the seed's loop and the 2-core
  simplex limit (the compiled solver alone, serial, divided by the cores);
- k=20000 n=10 and k=40 n=500 uniform plans: against the seed's loop;
- sparse plans' bytes against dense plans' bytes at k=1000 n=100;
- memory: a read-only memmap of k=100,000 n=30 (distances), peak Python
  allocations (tracemalloc) and the process's peak RSS, in a subprocess;
- cold start: the first call in a fresh process against a warm call.

Run: ``python benchmarks/bench_targets.py``
"""

import subprocess
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from _common import CORES, median_time, seed_joblib, seed_loop
from ot.lp.emd_wrap import emd_c
from scipy.optimize import linear_sum_assignment

from skemd import emd_batch

REPEAT = 5


def _solve_all(a, b, M, assignment):
    for Mi in M:
        linear_sum_assignment(Mi) if assignment else emd_c(a, b, Mi, 100_000, 1)


def _serial_limit(a, b, M, assignment):
    return median_time(lambda: _solve_all(a, b, M, assignment), REPEAT) / CORES


def _bare_threads(a, b, M, assignment):
    """The bare solver loop split over one thread per core: no skemd at all."""
    parts = np.array_split(np.arange(len(M)), CORES)
    with ThreadPoolExecutor(CORES) as pool:
        list(
            pool.map(
                lambda idx: _solve_all(a, b, M[idx[0] : idx[-1] + 1], assignment), parts
            )
        )


def speed_case(k, n, uniform, rows):
    rng = np.random.default_rng(0)
    M = rng.random((k, n, n))
    if uniform:
        a = b = np.full(n, 1.0 / n)
        skemd_ab = (None, None)
    else:
        a, b = rng.dirichlet(np.ones(n), size=2)
        skemd_ab = (a, b)
    t_skemd = median_time(
        lambda: emd_batch(M, *skemd_ab, return_plan=True, n_jobs=CORES), REPEAT
    )
    t_loop = median_time(lambda: seed_loop(a, b, M), REPEAT)
    name = f"k={k} n={n} {'uniform' if uniform else 'non-uniform'}, plans"
    rows.append((name, "skemd", t_skemd, ""))
    rows.append((name, "seed loop", t_loop, f"{t_loop / t_skemd:.2f}x"))
    if k == 1000:
        seed_joblib(a, b, M)  # warm the workers
        t_warm = median_time(lambda: seed_joblib(a, b, M), REPEAT)
        rows.append(
            (name, "seed joblib warm (n_jobs=4)", t_warm, f"{t_warm / t_skemd:.2f}x")
        )
    for solver in ("simplex", "assignment") if uniform else ("simplex",):
        assignment = solver == "assignment"
        limit = _serial_limit(a, b, M, assignment)
        share = f"skemd at {limit / t_skemd:.0%} of it"
        rows.append((name, f"limit: {solver} serial / cores", limit, share))
        bare = median_time(lambda f=assignment: _bare_threads(a, b, M, f), REPEAT)
        share = f"skemd at {bare / t_skemd:.0%} of it"
        rows.append((name, f"bare {solver} loop on {CORES} threads", bare, share))


def sparse_case(rows):
    M = np.random.default_rng(0).random((1000, 100, 100))
    for label, a in (
        ("uniform", None),
        ("non-uniform", np.random.default_rng(1).dirichlet(np.ones(100))),
    ):
        plan = emd_batch(M, a, return_plan="sparse", n_jobs=CORES).plan
        nbytes = plan.data.nbytes + plan.indices.nbytes + plan.indptr.nbytes
        rows.append(
            (
                f"sparse plans k=1000 n=100 {label}",
                "bytes vs dense",
                nbytes,
                f"{nbytes / M.nbytes:.1%}",
            )
        )


MEMORY_SCRIPT = """
import resource, sys, time, tracemalloc
import numpy as np
from skemd import emd_batch
M = np.load(sys.argv[1], mmap_mode="r")
tracemalloc.start()
start = time.perf_counter()
res = emd_batch(M, n_jobs={cores})
seconds = time.perf_counter() - start
_, peak = tracemalloc.get_traced_memory()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(seconds, peak, rss, res.distance.nbytes)
"""

COLD_SCRIPT = """
import time
import numpy as np
from skemd import emd_batch
M = np.random.default_rng(0).random((1000, 100, 100))
times = []
for _ in range(4):
    start = time.perf_counter()
    emd_batch(M, return_plan=True, n_jobs={cores})
    times.append(time.perf_counter() - start)
print(times[0], float(np.median(times[1:])))
"""


def _python(script, *args):
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script).format(cores=CORES), *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [float(x) for x in out.split()]


def memory_case(rows):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "costs.npy"
        M = np.lib.format.open_memmap(path, mode="w+", shape=(100_000, 30, 30))
        rng = np.random.default_rng(0)
        for start in range(0, len(M), 10_000):
            M[start : start + 10_000] = rng.random((10_000, 30, 30))
        M.flush()
        size = M.nbytes
        del M
        seconds, peak, rss, out = _python(MEMORY_SCRIPT, str(path))
    name = "memmap k=100000 n=30 distances"
    rows.append((name, "time s", seconds, ""))
    rows.append((name, "M on disk, MB", size / 1e6, ""))
    rows.append(
        (name, "peak Python allocations, MB", peak / 1e6, f"{peak / size:.1%} of M")
    )
    rows.append(
        (name, "peak RSS, MB (incl. mapped pages)", rss / 1e6, f"{rss / size:.0%} of M")
    )
    rows.append((name, "output, MB", out / 1e6, ""))


def cold_case(rows):
    cold, warm = _python(COLD_SCRIPT)
    name = "cold start k=1000 n=100 plans"
    rows.append((name, "first call s", cold, f"{cold / warm:.2f}x warm"))
    rows.append((name, "warm call s", warm, ""))


def main():
    rows = []
    speed_case(1000, 100, True, rows)
    speed_case(1000, 100, False, rows)
    speed_case(20000, 10, True, rows)
    speed_case(40, 500, True, rows)
    sparse_case(rows)
    memory_case(rows)
    cold_case(rows)
    print(f"{'case':<40} {'measure':<36} {'value':>10}  ratio")
    for case, what, value, ratio in rows:
        print(f"{case:<40} {what:<36} {value:>10.3f}  {ratio}")


if __name__ == "__main__":
    main()
