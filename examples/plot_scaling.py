"""
Scaling with k and n_jobs
=========================

POT issue #598 compared three ways of solving a stack of problems: a Python
loop of ``ot.emd``, the same loop over ``numpy.take`` slices, and
``joblib.Parallel`` with one task per slice. We time them, and skemd's
``emd_batch`` on 1 and 2 workers, for a growing number k of 50x50 problems
with plans, all in this run on this machine, and check that all five find
the same EMDs.

One task per slice pays a dispatch, a round trip of pickles and POT's Python
wrapper for every problem, which costs more than the solve itself; skemd
sends chunks of problems to threads and calls the compiled solver directly.
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import ot
from joblib import Parallel, delayed

from skemd import emd_batch


def python_loop(a, M):
    return np.stack([ot.emd(a, a, M[i]) for i in range(len(M))])


def numpy_take(a, M):
    return np.stack([ot.emd(a, a, M.take(i, 0)) for i in range(M.shape[0])])


def joblib_per_slice(a, M):
    tasks = (delayed(ot.emd)(a, a, M.take(i, 0)) for i in range(M.shape[0]))
    return np.stack(Parallel(n_jobs=4, max_nbytes=None)(tasks))


def seconds_and_emds(fn, a, M, repeat=3):
    """The best time of ``repeat`` calls of ``fn(a, M)``, and the EMDs of its plans."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        plans = fn(a, M)
        times.append(time.perf_counter() - start)
    return min(times), (plans * M).sum(axis=(1, 2))


n = 50
a = np.full(n, 1.0 / n)
rng = np.random.default_rng(0)
joblib_per_slice(a, rng.random((8, n, n)))  # start the workers: time them warm
methods = {
    "loop of ot.emd": python_loop,
    "numpy take + stack": numpy_take,
    "joblib, a task per slice (warm)": joblib_per_slice,
    "skemd, n_jobs=1": lambda a, M: emd_batch(M, return_plan=True, n_jobs=1).plan,
    "skemd, n_jobs=2": lambda a, M: emd_batch(M, return_plan=True, n_jobs=2).plan,
}
ks = [100, 300, 1000]
repeat = 3
# sphinx_gallery_start_ignore
# The test suite runs this example on fewer problems (tests/test_examples.py).
import os  # noqa: E402

if os.environ.get("SKEMD_EXAMPLES_SMALL") == "1":
    ks, repeat = [10, 30, 100], 1
# sphinx_gallery_end_ignore
timings = {name: [] for name in methods}
emds = {name: [] for name in methods}
for k in ks:
    M = rng.random((k, n, n))
    for name, fn in methods.items():
        t, values = seconds_and_emds(fn, a, M, repeat)
        timings[name].append(t)
        emds[name].append(values)

print(f"{'k':>5s} " + " ".join(f"{name[:18]:>18s}" for name in methods))
for i, k in enumerate(ks):
    print(f"{k:5d} " + " ".join(f"{timings[name][i]:17.3f}s" for name in methods))
loop, best = timings["loop of ot.emd"][-1], timings["skemd, n_jobs=2"][-1]
print(f"at k={ks[-1]}: skemd on 2 workers is {loop / best:.1f}x the loop")

# All five solve the same problems: their EMDs must equal the loop's.
loop_emds = np.concatenate(emds["loop of ot.emd"])
for name in list(methods)[1:]:
    difference = np.max(np.abs(np.concatenate(emds[name]) - loop_emds) / loop_emds)
    print(f"{name}: EMDs within {difference:.1e} of the loop's (relative)")

# %%
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
for name, values in timings.items():
    style = "o-" if name.startswith("skemd") else "s--"
    ax.plot(ks, values, style, label=name)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("k problems of 50x50, plans returned")
ax.set_ylabel(f"seconds (best of {repeat})")
ax.legend(fontsize="small")
plt.show()
