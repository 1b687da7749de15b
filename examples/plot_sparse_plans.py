"""
Sparse plans: a memory comparison
=================================

An optimal plan from the network simplex has at most ``n + m - 1`` nonzero
entries out of ``n * m``. ``return_plan="sparse"`` returns all k plans as one
CSR array of shape (k, n * m) and never builds a dense plan. We compare the
bytes of both forms, and the peak memory of the call that makes them, for k
problems of growing size, and check that both hold the same plans.
"""

# %%
import tracemalloc

import matplotlib.pyplot as plt
import numpy as np

from skemd import emd_batch

rng = np.random.default_rng(0)
k = 200
# sphinx_gallery_start_ignore
# The test suite runs this example on fewer problems (tests/test_examples.py).
import os  # noqa: E402

if os.environ.get("SKEMD_EXAMPLES_SMALL") == "1":
    k = 50
# sphinx_gallery_end_ignore
sizes = [20, 50, 100, 200]
rows = []
for n in sizes:
    M = rng.random((k, n, n))
    a = rng.dirichlet(np.ones(n), size=k)  # non-uniform: the network simplex
    peaks = {}
    for form in ("dense", "sparse"):
        tracemalloc.start()
        res = emd_batch(M, a=a, return_plan=form, n_jobs=-1)
        peaks[form] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if form == "dense":
            dense = res.plan
    sparse = res.plan
    same = np.array_equal(sparse.toarray().reshape(k, n, n), dense)
    nbytes = sparse.data.nbytes + sparse.indices.nbytes + sparse.indptr.nbytes
    nonzeros = np.diff(sparse.indptr).max()  # of the fullest plan
    rows.append(
        (n, dense.nbytes, nbytes, peaks["dense"], peaks["sparse"], nonzeros, same)
    )
    del dense, sparse, res

# %%
# Per size: the bytes of the k plans in each form and their ratio, the peak
# memory of each call, the most nonzeros in one plan (at most n + m - 1) and
# whether both forms hold the same plans.
print(
    "  n  dense plans  sparse plans   ratio  peak dense  peak sparse"
    "  nonzeros  n+m-1  same"
)
for n, d, s, pd, ps, nonzeros, same in rows:
    print(
        f"{n:3d} {d / 1e6:9.1f} MB {s / 1e6:10.2f} MB {s / d:7.2%} "
        f"{pd / 1e6:8.1f} MB {ps / 1e6:9.1f} MB {nonzeros:9d} {2 * n - 1:6d}  {same}"
    )

# %%
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.plot(sizes, [r[1] / 1e6 for r in rows], "o-", label="dense plans")
ax.plot(sizes, [r[2] / 1e6 for r in rows], "s-", label="sparse plans (CSR)")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xticks(sizes, [str(n) for n in sizes])
ax.set_xlabel("n = m")
ax.set_ylabel(f"MB for k={k} plans")
ax.legend()
plt.show()
