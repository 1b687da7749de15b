"""skemd: batched exact optimal transport (Earth Mover's Distance) for scikit-learn."""

from ._batch import emd_batch
from ._batch_transformer import BatchEMDTransformer
from ._distance_kernel import DistanceKernel
from ._driver import EMDResult
from ._neighbors import EMDNeighborsTransformer
from ._pairwise import pairwise_emd
from ._pairwise_transformer import PairwiseEMDTransformer
from ._stream import iter_emd_batch
from ._warnings import PairCacheWarning

__version__ = "0.1.0.dev0"
__all__ = [
    "BatchEMDTransformer",
    "DistanceKernel",
    "EMDNeighborsTransformer",
    "EMDResult",
    "PairCacheWarning",
    "PairwiseEMDTransformer",
    "__version__",
    "emd_batch",
    "iter_emd_batch",
    "pairwise_emd",
]
