"""
Unequal masses: when the total mass is the signal
=================================================

Each sample is a histogram of event counts over 30 bins on a line. Both
classes spread their events alike (a bump near the middle, with noise); the
samples of class 1 have 1.5 times as many events. The label is in the total
mass, which the exact EMD cannot see: it needs equal masses, so the
histograms must be normalised first, and that throws the label away.

Partial transport (``method="partial"``) and entropic unbalanced transport
(``method="unbalanced"``) compare histograms of different masses as they
are. Each feature below is one transport cost per sample, from a fixed
reference histogram ``a`` of mass 1 to the sample's histogram ``b``, passed
as per-sample metadata so that cross-validation slices it with the samples.
"""

# %%
# The data
# --------
import matplotlib.pyplot as plt
import numpy as np
import ot
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skemd import BatchEMDTransformer, emd_batch

rng = np.random.default_rng(0)
k, n = 200, 30
y = rng.integers(0, 2, k)
grid = np.linspace(0, 1, n)
centre = 0.5 + 0.05 * rng.standard_normal(k)
shape = np.exp(-(((grid - centre[:, None]) / 0.12) ** 2) / 2)
shape += 0.1 * rng.random((k, n))
shape /= shape.sum(axis=1, keepdims=True)
mass = np.where(y == 1, 1.5, 1.0) * rng.lognormal(0.0, 0.1, k)
H = shape * mass[:, None]  # (k, n) histograms of masses around 1 and 1.5

reference = np.exp(-(((grid - 0.5) / 0.12) ** 2) / 2)
reference /= reference.sum()  # a: mass 1
cost = np.abs(grid[:, None] - grid[None, :])
X = np.broadcast_to(cost, (k, n, n))  # the same ground cost for every sample

fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
for label, color in ((0, "tab:blue"), (1, "tab:orange")):
    for h in H[y == label][:5]:
        ax.plot(grid, h, color=color, alpha=0.6)
ax.set_xlabel("bin")
ax.set_ylabel("count share")
ax.set_title("Five histograms of each class: class 1 (orange) has more mass")

# %%
# Three ways to compare them
# --------------------------
# The same pipeline (transport cost, scaling, logistic regression), with
# three transport problems. The unbalanced method's ``reg_m`` is the weight of
# the penalties that hold the plan's masses to ``a``'s and ``b``'s; its best
# value depends on the data, so a grid search chooses it.
cv = StratifiedKFold(5, shuffle=True, random_state=0)
normalised = H / H.sum(axis=1, keepdims=True)
unbalanced = {"method": "unbalanced", "reg": 0.05}


def pipeline(**params):
    emd = BatchEMDTransformer(a=reference, **params)
    emd.set_fit_request(b=True).set_transform_request(b=True)
    return make_pipeline(emd, StandardScaler(), LogisticRegression())


with sklearn.config_context(enable_metadata_routing=True):
    scores = {
        "exact EMD,\nnormalised": cross_val_score(
            pipeline(), X, y, cv=cv, params={"b": normalised}
        ).mean(),
        "partial": cross_val_score(
            pipeline(method="partial"), X, y, cv=cv, params={"b": H}
        ).mean(),
    }
    search = GridSearchCV(
        pipeline(**unbalanced),
        {"batchemdtransformer__method_params": [{"reg_m": 0.1}, {"reg_m": 1.0}]},
        cv=cv,
    ).fit(X, y, b=H)
reg_m = search.best_params_["batchemdtransformer__method_params"]["reg_m"]
scores[f"unbalanced,\nreg_m={reg_m:g}"] = search.best_score_
for name, score in scores.items():
    print(f"{name.replace(chr(10), ' ')}: mean CV accuracy {score:.3f}")

fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.bar(list(scores), list(scores.values()), color=["tab:gray", "tab:blue", "tab:green"])
ax.axhline(0.5, color="black", linestyle=":", label="chance")
ax.set_ylim(0.4, 1.0)
ax.set_ylabel("mean CV accuracy")
ax.legend()

# %%
# The same values as POT
# ----------------------
# Each feature is POT's value on the same problem: ``partial_wasserstein2``
# with ``m`` the smaller mass, and ``sinkhorn_unbalanced2``. Many partial
# costs are 0: when the reference fits under a histogram of class 1, its mass
# moves nowhere.
few = slice(0, 20)
partial = emd_batch(X[few], reference, H[few], method="partial").distance
entropic = emd_batch(
    X[few], reference, H[few], **unbalanced, method_params={"reg_m": reg_m}
).distance
pot_partial = [
    ot.partial.partial_wasserstein2(reference, h, cost, m=min(reference.sum(), h.sum()))
    for h in H[few]
]
pot_unbalanced = [
    ot.unbalanced.sinkhorn_unbalanced2(reference, h, cost, 0.05, reg_m) for h in H[few]
]
for name, values, expected in (
    ("partial", partial, pot_partial),
    ("unbalanced", entropic, pot_unbalanced),
):
    difference = np.max(np.abs(values - expected)) / np.max(expected)
    print(
        f"{name}: largest difference from POT, relative to the largest: "
        f"{difference:.1e}"
    )
