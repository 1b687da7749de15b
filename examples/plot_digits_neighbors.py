"""
Exact EMD nearest neighbours of the digits
==========================================

:class:`~skemd.EMDNeighborsTransformer` builds the graph of each sample's
``n_neighbors`` nearest samples under the Earth Mover's Distance, in the
format of scikit-learn's :class:`~sklearn.neighbors.KNeighborsTransformer`.
The neighbours are exactly those of the full distance matrix, but cheap lower
bounds of the EMD rule most pairs out without solving them.

Each 8x8 ``load_digits`` image is a histogram of ink over the pixel grid, and
the ground cost is the euclidean distance between pixel positions. We time
the 10-nearest-neighbour graph against the full matrix
(:func:`~skemd.pairwise_emd`) on 400 images, build the graph of all 1,797,
classify with ``KNeighborsClassifier(metric="precomputed")`` after the
transformer in a pipeline, and embed the digits with ``Isomap`` from the
graph. Everything runs on two cores (``n_jobs=2``).
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.manifold import Isomap
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, KNeighborsTransformer
from sklearn.pipeline import make_pipeline

from skemd import EMDNeighborsTransformer, pairwise_emd

X, y = load_digits(return_X_y=True)
pixels = np.indices((8, 8)).reshape(2, -1).T.astype(float)  # (64, 2) positions
params = {"support": pixels, "metric": "euclidean", "n_jobs": 2}
n_subset = 400  # the images on which the graph meets the full matrix
# sphinx_gallery_start_ignore
# The test suite runs this example on fewer images (tests/test_examples.py).
import os  # noqa: E402

if os.environ.get("SKEMD_EXAMPLES_SMALL") == "1":
    X, y, n_subset = X[:600], y[:600], 150
# sphinx_gallery_end_ignore

# %%
# The graph against the full matrix, on the first 400 images
# ------------------------------------------------------------
# The full matrix solves every pair once (it is symmetric); the graph solves
# the pairs its lower bounds cannot rule out. scikit-learn's own transformer,
# run on the full matrix, gives the brute-force graph to compare with.
subset = X[:n_subset]
start = time.perf_counter()
D = pairwise_emd(subset, **params)
matrix_seconds = time.perf_counter() - start

start = time.perf_counter()
neighbours = EMDNeighborsTransformer(n_neighbors=10, **params)
graph = neighbours.fit_transform(subset)
graph_seconds = time.perf_counter() - start

brute = KNeighborsTransformer(n_neighbors=10, metric="precomputed").fit_transform(D)
same = np.array_equal(graph.indices, brute.indices) and np.allclose(
    graph.data, brute.data, rtol=1e-9, atol=1e-12
)
n_pairs = len(subset) * (len(subset) - 1) // 2
print(
    f"{len(subset)} images: full matrix {matrix_seconds:.1f} s, "
    f"10-NN graph {graph_seconds:.1f} s, "
    f"ratio {matrix_seconds / graph_seconds:.1f}x"
)
print(
    f"{len(subset)} images: pairs solved {neighbours.n_pairs_solved_:,} of "
    f"{n_pairs:,}: {neighbours.n_pairs_solved_ / n_pairs:.1%}"
)
print(f"same neighbours and distances as the full matrix: {same}")

# %%
# The graph of all 1,797 images
# -----------------------------
# The full matrix would solve every one of the 1.6 million pairs: at the rate
# of the matrix above, that takes minutes.
start = time.perf_counter()
neighbours = EMDNeighborsTransformer(n_neighbors=10, **params)
graph = neighbours.fit_transform(X)
all_seconds = time.perf_counter() - start

n_pairs = len(X) * (len(X) - 1) // 2
estimate = matrix_seconds * n_pairs / (len(subset) * (len(subset) - 1) // 2)
print(
    f"{len(X):,} images: 10-NN graph {all_seconds:.1f} s "
    f"(the full matrix: about {estimate:.0f} s at the rate above)"
)
print(
    f"{len(X):,} images: pairs solved {neighbours.n_pairs_solved_:,} of "
    f"{n_pairs:,}: {neighbours.n_pairs_solved_ / n_pairs:.1%}"
)
print(
    f"graph: {graph.shape}, {graph.nnz:,} entries, each image its own first "
    f"neighbour: {(graph.indices[graph.indptr[:-1]] == np.arange(len(X))).all()}"
)

# %%
# A nearest-neighbour classifier in a pipeline
# --------------------------------------------
# ``fit`` builds the graph of the training images; ``predict`` the graph of
# the test images against them. The transformer finds as many neighbours as
# the classifier uses: fewer neighbours, fewer pairs to solve. For comparison,
# the same classifier on the raw pixels, with the euclidean distance between
# images.
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
pipe = make_pipeline(
    EMDNeighborsTransformer(n_neighbors=5, **params),
    KNeighborsClassifier(n_neighbors=5, metric="precomputed"),
)
start = time.perf_counter()
emd_accuracy = pipe.fit(X_train, y_train).score(X_test, y_test)
pipe_seconds = time.perf_counter() - start
pixel_accuracy = (
    KNeighborsClassifier(n_neighbors=5).fit(X_train, y_train).score(X_test, y_test)
)
print(
    f"EMD 5-NN classifier: test accuracy {emd_accuracy:.3f}, "
    f"fit and predict {pipe_seconds:.1f} s"
)
print(f"pixel 5-NN classifier: test accuracy {pixel_accuracy:.3f}")

# %%
# An embedding from the graph
# ---------------------------
# Isomap takes the precomputed graph as it is: geodesic distances along the
# EMD neighbours, then a 2-D map. On the left, the time of each computation.
embedding = Isomap(n_neighbors=10, metric="precomputed").fit_transform(graph)

fig, (ax_time, ax_map) = plt.subplots(
    1, 2, figsize=(11, 4.5), layout="constrained", width_ratios=[1, 1.4]
)
labels = [f"matrix\n{len(subset)}", f"graph\n{len(subset)}", f"graph\n{len(X):,}"]
labels.append(f"matrix\n{len(X):,}\n(estimate)")
bars = ax_time.bar(labels, [matrix_seconds, graph_seconds, all_seconds, estimate])
bars[-1].set(hatch="//", fill=False)
ax_time.set_yscale("log")
ax_time.set_ylabel("seconds on 2 cores")
ax_time.set_title("Exact EMD 10-NN graph vs full matrix")
points = ax_map.scatter(*embedding.T, c=y, cmap="tab10", s=6)
fig.colorbar(points, ax=ax_map, ticks=range(10), label="digit")
ax_map.set_title(f"Isomap of the EMD 10-NN graph, {len(X):,} digits")
ax_map.set_xticks([])
ax_map.set_yticks([])
plt.show()
