"""The order of the gallery: from first steps to scaling."""

ORDER = [
    "plot_quickstart.py",
    "plot_grid_search.py",
    "plot_digits_emd_svm.py",
    "plot_digits_neighbors.py",
    "plot_unequal_mass.py",
    "plot_sparse_plans.py",
    "plot_scaling.py",
]


class ExampleOrder:
    """Sort key for sphinx-gallery's ``within_subsection_order``."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        return ORDER.index(filename) if filename in ORDER else len(ORDER)

    def __repr__(self):
        return f"<{type(self).__name__}>"
