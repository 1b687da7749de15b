"""Memory-mapped input: hand the pages of a solved chunk back to the OS.

Reading a memmap maps its pages into the process, and they count in its
resident memory until unmapped, even after the data is no longer needed. A
batch far larger than RAM is streamed by releasing each chunk's pages once
it is solved; the file stays in the page cache, so nothing is lost.
"""

import mmap

import numpy as np


def release_pages(array):
    """Drop the resident pages of ``array`` if it views a read-only memmap.

    Parameters
    ----------
    array : ndarray
        Any array. Only a contiguous view into a read-only ``mmap`` (such as
        ``np.load(path, mmap_mode="r")`` or a slice of it) is affected; a
        writable or copy-on-write mapping keeps its pages, since dropping
        them could lose writes.

    Returns
    -------
    released : bool
        Whether pages were released.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from skemd._memmap import release_pages
    >>> path = os.path.join(tempfile.mkdtemp(), "M.npy")
    >>> np.save(path, np.ones((4, 3, 3)))
    >>> M = np.load(path, mmap_mode="r")
    >>> float(M[1:3].sum()), release_pages(M[1:3]), release_pages(np.ones(3))
    (18.0, True, False)
    >>> float(M[1:3].sum())  # the data is read back from the file
    18.0
    """
    mapping = _read_only_mmap(array)
    if mapping is None or not array.flags.c_contiguous or array.nbytes == 0:
        return False
    start = array.ctypes.data - np.frombuffer(mapping, np.uint8).ctypes.data
    first = start - start % mmap.PAGESIZE
    mapping.madvise(mmap.MADV_DONTNEED, first, start + array.nbytes - first)
    return True


def _read_only_mmap(array):
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    if not isinstance(base, mmap.mmap) or not hasattr(base, "madvise"):
        return None
    with memoryview(base) as view:
        return base if view.readonly else None
