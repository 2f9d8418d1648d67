"""The uploads process's C allocator: large buffers go back to the system when freed.

An upload passes through this process as buffers of a megabyte or more (the stream's chunks,
the blocks cut from them, the pool's pickled results and their spool lines), each freed soon
after. glibc's malloc serves a request of at least its mmap threshold (128 KiB to start) with
its own mapping, returned to the system by ``free``; but each time such a mapping is freed it
raises the threshold to that mapping's size (up to 32 MiB). After the first large buffers, then,
every buffer below the largest one freed so far comes from the heap, where buffers of varying
sizes leave holes that the heap keeps: the process's peak then grows with the number of blocks
an upload brings, that is with the file's size, although no more is alive at any time.
Setting the threshold explicitly turns that adjustment off (``mallopt``), as the
``MALLOC_MMAP_THRESHOLD_`` environment variable would; an operator who sets that variable keeps
their value. The cost is a mapping and its page faults per large buffer, a few per block.
"""

from __future__ import annotations

import ctypes
import os

MMAP_THRESHOLD = 128 * 1024
"""glibc's own starting threshold, kept for good."""
_M_MMAP_THRESHOLD = -3  # malloc.h


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix the allocator's mmap threshold at ``threshold`` bytes; whether it was set (False
    without glibc's ``mallopt``, or when ``MALLOC_MMAP_THRESHOLD_`` is in the environment)."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: macOS has no mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))
