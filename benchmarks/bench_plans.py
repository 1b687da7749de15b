"""What dense plans cost over distances alone (issue #14.6).

k=1000 problems of 100x100, squared Euclidean costs between random 2-D point
clouds, random positive weights ``a`` and ``b`` (normalised, shared by every
problem), so every problem goes to the network simplex. Timed in turns in
one run, after a warm-up of each (median and quartiles of ``--repeat``
turns, 9 by default; each call's result is kept until its time is taken, so
freeing the plans is not timed):

- ``emd_batch(M, a, b)`` against ``emd_batch(M, a, b, return_plan="dense")``,
  serial and with ``n_jobs=2``, and the overhead ratios;
- the bare compiled solver, ``ot.lp.emd_wrap.emd_c(a, b, M[i], max_iter, 1)``
  in a loop, serial and split over a 2-thread ``ThreadPoolExecutor``: the
  speed that distances alone should reach;
- diagnostics, on the same 2 threads: the bare loop copying each plan into a
  fresh zeroed (k, n, m) array, its pages first touched by the workers as
  they copy; into one whose pages the calling thread touched first (one
  write per page, timed); and into one touched before the timing.

Wall times swing when other processes share the cores. On Linux, each
solving stretch (a skemd chunk, a bare thread's share) also records its
thread's scheduler statistics (``/proc/thread-self/schedstat``), and the
script prints an "unloaded" estimate: the calling thread's CPU time outside
the stretches plus the busiest thread's time in them less its run-queue
wait (what the call would take with the cores to itself), and the solving
threads' CPU time. The skemd stretches are found by wrapping the private
``skemd._driver.solve_chunk``; the script says so if that no longer works.

Fresh memory can cost more than its first write: in a VM whose guest hands
freed memory back to the host (free page reporting, as on the machine these
figures were first taken on), pages freed more than about 2 s earlier must
be backed by the host again when touched. ``--pause S`` sleeps S seconds
before each timed call, so that every call gets such "cold" memory; without
it, a call often reuses the pages the previous call freed.

Run: ``python benchmarks/bench_plans.py [--repeat N] [--pause S]``
"""

import argparse
import mmap
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from ot.lp.emd_wrap import emd_c

import skemd._driver
from skemd import emd_batch

K, N, MAX_ITER, THREADS = 1000, 100, 100_000, 2
SCHEDSTAT = "/proc/thread-self/schedstat"


def problems():
    rng = np.random.default_rng(0)
    x, y = rng.random((K, N, 2)), rng.random((K, N, 2))
    M = ((x[:, :, None] - y[:, None]) ** 2).sum(-1)
    a, b = rng.random(N) + 0.1, rng.random(N) + 0.1
    return M, a / a.sum(), b / b.sum()


def schedstat():
    """This thread's (on-CPU, run-queue wait) seconds and the wall clock."""
    if not os.path.exists(SCHEDSTAT):
        return 0.0, 0.0, time.perf_counter()
    with open(SCHEDSTAT) as f:
        on_cpu, waiting, _ = map(int, f.read().split())
    return on_cpu / 1e9, waiting / 1e9, time.perf_counter()


class Stretches:
    """Scheduler statistics of the solving stretches of one call."""

    def __init__(self):
        self.lock = threading.Lock()
        self.records = []

    def timed(self, fn):
        def run(*args, **kwargs):
            cpu0, wait0, wall0 = schedstat()
            result = fn(*args, **kwargs)
            cpu1, wait1, wall1 = schedstat()
            with self.lock:
                self.records.append(
                    (threading.get_ident(), wall1 - wall0, cpu1 - cpu0, wait1 - wait0)
                )
            return result

        return run

    def measure(self, fn):
        """Run ``fn``; return its result, wall time, unloaded estimate, CPU."""
        self.records.clear()
        cpu0, _, wall0 = schedstat()
        result = fn()
        cpu1, _, wall1 = schedstat()
        caller = threading.get_ident()
        busy, solving_cpu, caller_cpu = {}, 0.0, cpu1 - cpu0
        for thread, wall, cpu, wait in self.records:
            busy[thread] = busy.get(thread, 0.0) + wall - wait
            solving_cpu += cpu
            if thread == caller:
                caller_cpu -= cpu
        unloaded = caller_cpu + max(busy.values()) if busy else np.nan
        return result, wall1 - wall0, unloaded, solving_cpu if busy else np.nan


STRETCHES = Stretches()
skemd._driver.solve_chunk = STRETCHES.timed(skemd._driver.solve_chunk)


def bare(pool, a, b, M, out=None):
    """The compiled solver alone, split over the THREADS of ``pool`` (or serial)."""

    @STRETCHES.timed
    def solve(rows):
        for i in rows:
            G = emd_c(a, b, M[i], MAX_ITER, 1)[0]
            if out is not None:
                out[i] = G

    if pool is None:
        solve(range(len(M)))
    else:
        list(pool.map(solve, np.array_split(np.arange(len(M)), THREADS)))


def touched_zeros(shape):
    """Zeros whose pages the calling thread maps first (one write per page)."""
    out = np.zeros(shape)
    out.reshape(-1)[:: mmap.PAGESIZE // out.itemsize] = 0.0
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--pause", type=float, default=0.0)
    args = parser.parse_args()
    repeat = args.repeat
    M, a, b = problems()
    reference = emd_batch(M, a, b)
    dense = emd_batch(M, a, b, return_plan="dense", n_jobs=2)
    if not np.array_equal(dense.distance, reference.distance):
        raise AssertionError("dense plans changed the distances")
    touched = np.zeros(M.shape)
    touched.fill(0.0)
    pool = ThreadPoolExecutor(THREADS)
    functions = {
        "bare emd_c, serial": lambda: bare(None, a, b, M),
        "emd_batch distances, serial": lambda: emd_batch(M, a, b),
        "emd_batch dense plans, serial": lambda: emd_batch(
            M, a, b, return_plan="dense"
        ),
        "bare emd_c, 2 threads": lambda: bare(pool, a, b, M),
        "emd_batch distances, n_jobs=2": lambda: emd_batch(M, a, b, n_jobs=2),
        "emd_batch dense plans, n_jobs=2": lambda: emd_batch(
            M, a, b, return_plan="dense", n_jobs=2
        ),
        "bare + copy to fresh zeros, 2 threads": lambda: bare(
            pool, a, b, M, np.zeros(M.shape)
        ),
        "bare + copy to zeros touched first, 2 threads": lambda: bare(
            pool, a, b, M, touched_zeros(M.shape)
        ),
        "bare + copy to touched array, 2 threads": lambda: bare(pool, a, b, M, touched),
    }
    stats = {name: [] for name in functions}
    for fn in functions.values():
        fn()  # warm-up
    for _ in range(repeat):
        for name, fn in functions.items():
            time.sleep(args.pause)
            result, *measures = STRETCHES.measure(fn)
            stats[name].append(measures)
            del result
    pool.shutdown()
    stats = {name: np.array(s) for name, s in stats.items()}
    if np.isnan(stats["emd_batch distances, n_jobs=2"][:, 1]).all():
        print("(no skemd stretches recorded: skemd._driver changed; see the top)")
    print(
        f"k={K} n={N} non-uniform weights, network simplex; {repeat} turns, "
        f"{args.pause:g} s pause before each call"
    )
    print(
        f"  {'(seconds; median [quartiles])':<46} {'wall':>21} "
        f"{'unloaded estimate':>21} {'solving CPU':>12}"
    )

    def cell(name, j):
        q1, q2, q3 = np.percentile(stats[name][:, j], [25, 50, 75])
        return f"{q2:.3f} [{q1:.3f}-{q3:.3f}]"

    for name in functions:
        print(
            f"  {name:<46} {cell(name, 0):>21} {cell(name, 1):>21} "
            f"{np.median(stats[name][:, 2]):>12.3f}"
        )

    def ratio(x, y, j):
        per_turn = stats[x][:, j] / stats[y][:, j]  # the same turn
        q1, q3 = np.percentile(per_turn, [25, 75])
        medians = np.median(stats[x][:, j]) / np.median(stats[y][:, j])
        return f"{medians:.3f} [{q1:.3f}-{q3:.3f}]"

    print(
        "\nRatios of medians [quartiles of the per-turn ratios]:"
        f"\n  {'':<44} {'wall':>21} {'unloaded estimate':>21}"
    )
    for label, x, y in (
        (
            "dense / distances, serial",
            "emd_batch dense plans, serial",
            "emd_batch distances, serial",
        ),
        (
            "dense / distances, n_jobs=2",
            "emd_batch dense plans, n_jobs=2",
            "emd_batch distances, n_jobs=2",
        ),
        (
            "distances, n_jobs=2 / bare 2 threads",
            "emd_batch distances, n_jobs=2",
            "bare emd_c, 2 threads",
        ),
        (
            "dense plans, n_jobs=2 / bare 2 threads",
            "emd_batch dense plans, n_jobs=2",
            "bare emd_c, 2 threads",
        ),
        (
            "bare + copy to fresh zeros / bare",
            "bare + copy to fresh zeros, 2 threads",
            "bare emd_c, 2 threads",
        ),
        (
            "bare + copy to zeros touched first / bare",
            "bare + copy to zeros touched first, 2 threads",
            "bare emd_c, 2 threads",
        ),
        (
            "bare + copy to touched array / bare",
            "bare + copy to touched array, 2 threads",
            "bare emd_c, 2 threads",
        ),
    ):
        print(f"  {label:<44} {ratio(x, y, 0):>21} {ratio(x, y, 1):>21}")


if __name__ == "__main__":
    main()
