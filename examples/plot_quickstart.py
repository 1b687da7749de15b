"""
Quickstart: a batch of EMDs and their plans
===========================================

``emd_batch`` solves k optimal transport problems given as a stack of cost
matrices, and returns the k Earth Mover's Distances and, if asked, the optimal
plans. ``BatchEMDTransformer`` is the same computation as a scikit-learn
transformer. We start from the case of POT issue #598 (k=1000 random problems
of 100x100) and check every value against POT's own loop.
"""

# %%
# POT issue #598's case
# ---------------------
import time

import matplotlib.pyplot as plt
import numpy as np
import ot

from skemd import BatchEMDTransformer, emd_batch

rng = np.random.default_rng(0)
k, n = 1000, 100
M = rng.random((k, n, n))
uniform = np.full(n, 1.0 / n)

start = time.perf_counter()
loop = np.array([ot.emd2(uniform, uniform, M_i) for M_i in M])
loop_seconds = time.perf_counter() - start

start = time.perf_counter()
res = emd_batch(M, n_jobs=-1)
batch_seconds = time.perf_counter() - start

print(f"loop of ot.emd2: {loop_seconds:.2f} s, emd_batch: {batch_seconds:.2f} s")
difference = np.max(np.abs(res.distance - loop) / loop)
print(f"largest relative difference from POT: {difference:.1e}")

# %%
# Plans drawn as images
# ---------------------
# Four problems on the same 1-D grid, with the squared distance as cost: one
# source distribution, four targets. An optimal plan on a line is monotone,
# so it lies along a curve from the top-left to the bottom-right corner.
x = np.linspace(0, 1, 60)
cost = (x[:, None] - x[None, :]) ** 2


def bump(center, width):
    w = np.exp(-(((x - center) / width) ** 2))
    return w / w.sum()


a = bump(0.3, 0.1)
targets = {
    "shifted": bump(0.6, 0.1),
    "wider": bump(0.5, 0.25),
    "two bumps": 0.5 * bump(0.2, 0.05) + 0.5 * bump(0.8, 0.05),
    "uniform": np.full(60, 1 / 60),
}
B = np.array(list(targets.values()))
res = emd_batch(np.repeat(cost[None], len(B), axis=0), a=a, b=B, return_plan=True)

fig, axes = plt.subplots(1, 4, figsize=(12, 3.4), layout="constrained")
for ax, name, plan, emd in zip(axes, targets, res.plan, res.distance, strict=True):
    ax.imshow(plan, cmap="viridis", origin="upper")
    ax.set_title(f"{name}: EMD {emd:.3f}")
    ax.set_xlabel("target bin")
axes[0].set_ylabel("source bin")
plt.show()

# %%
# As a scikit-learn transformer
# -----------------------------
# Each sample is one cost matrix; the feature is its EMD, the same value as
# POT's. ``set_output`` works, since the transformer names its features.
emd = BatchEMDTransformer(n_jobs=-1).set_output(transform="default")
features = emd.fit_transform(M[:5])
print(emd.get_feature_names_out(), features.ravel().round(4))
difference = np.max(np.abs(features.ravel() - loop[:5]) / loop[:5])
print(f"largest relative difference from POT: {difference:.1e}")
