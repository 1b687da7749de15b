"""
Pipeline and grid search over the EMD
=====================================

Each sample here is a cost matrix: the squared distances between 20 noisy
points on a line and a fixed grid of 20 positions. The two classes differ in
how far the points were shifted, which is what the EMD measures. The EMD is a
feature inside a ``Pipeline``, and ``GridSearchCV`` chooses the solver
(exact, or Sinkhorn with its ``reg``) along with the classifier's ``C``, like
any other preprocessing parameter.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skemd import BatchEMDTransformer

rng = np.random.default_rng(0)
k, n = 400, 20
# sphinx_gallery_start_ignore
# The test suite runs this example on fewer samples (tests/test_examples.py).
import os  # noqa: E402

if os.environ.get("SKEMD_EXAMPLES_SMALL") == "1":
    k = 200
# sphinx_gallery_end_ignore
y = rng.integers(0, 2, k)
grid = np.linspace(0, 1, n)
shift = np.where(y == 1, 0.22, 0.1) + rng.normal(0, 0.04, k)
points = grid + shift[:, None] + rng.normal(0, 0.05, (k, n))
X = (points[:, :, None] - grid[None, None, :]) ** 2  # (k, n, n) costs
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

# %%
# The search: the exact EMD against Sinkhorn at three regularisations. At
# ``reg=0.001`` the problems stop at ``max_iter=1000`` before reaching
# ``tol=1e-9``; each fit would say so with a ``ConvergenceWarning`` (the
# per-problem flags are in ``emd_batch(...).converged``). We silence them here.
warnings.filterwarnings("ignore", category=ConvergenceWarning)
pipe = make_pipeline(
    BatchEMDTransformer(n_jobs=-1), StandardScaler(), LogisticRegression()
)
C = [0.1, 1.0, 10.0]
param_grid = [
    {"batchemdtransformer__method": ["exact"], "logisticregression__C": C},
    {
        "batchemdtransformer__method": ["sinkhorn"],
        "batchemdtransformer__reg": [0.001, 0.01, 0.1],
        "logisticregression__C": C,
    },
]
search = GridSearchCV(pipe, param_grid, cv=5).fit(X_train, y_train)
print("best:", search.best_params_)
print(f"test accuracy: {search.score(X_test, y_test):.3f}")

# %%
# Mean cross-validated accuracy of each solver, at the best ``C`` for each.
results = search.cv_results_
labels, scores = [], []
for method, reg in [
    ("exact", None),
    ("sinkhorn", 0.001),
    ("sinkhorn", 0.01),
    ("sinkhorn", 0.1),
]:
    mask = [
        p["batchemdtransformer__method"] == method
        and p.get("batchemdtransformer__reg") == reg
        for p in results["params"]
    ]
    labels.append("exact" if reg is None else f"sinkhorn\nreg={reg}")
    scores.append(results["mean_test_score"][mask].max())
    print(f"{labels[-1].replace(chr(10), ' ')}: mean CV accuracy {scores[-1]:.3f}")

fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.bar(labels, scores, color=["tab:blue"] + ["tab:orange"] * 3)
ax.set_ylim(0.5, 1.0)
ax.set_ylabel("mean CV accuracy")
ax.set_title("The EMD feature: exact against entropic")
plt.show()
