"""The solvers: one module per method, described in the registry.

``_registry`` holds :data:`METHODS`; ``_chunk`` runs a method's solver on a
chunk. Add a method with its solver module and one registry entry.
"""

from ._chunk import ChunkResult, solve_chunk
from ._registry import (
    DEFAULT_METHOD,
    METHODS,
    REQUIRED,
    SHARED_PARAMETERS,
    Method,
    Parameter,
    SharedParameter,
)

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "REQUIRED",
    "SHARED_PARAMETERS",
    "ChunkResult",
    "Method",
    "Parameter",
    "SharedParameter",
    "solve_chunk",
]
