"""Keep a long transcription run's memory flat: hand freed memory back to the operating system.

glibc's ``malloc`` keeps what a process frees for later reuse. A run over many recordings frees
audio arrays and activations of a different size at every batch; the freed blocks fragment the
heap and are kept, so the resident size grew with the number of files (1.07 GB for 200 clips,
1.70 GB for 600, issue 35) although nothing leaked. Two glibc settings fix it:

* :func:`limit_allocator_caching` (once, at the start of a command): blocks of
  :data:`MMAP_THRESHOLD_BYTES` and more get their own memory mapping, returned to the system when
  freed, instead of the heap's dynamic threshold, which rises to 32 MiB after the first large free;
* :func:`release_freed_memory` (after each group of files): ``malloc_trim(0)`` returns the free
  pages of every heap.

Both are no-ops where the C library is not glibc (macOS, musl).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers of glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value (128 KiB), kept fixed instead of rising
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES  # free heap top above this goes back (glibc's default pairing)


@functools.lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def limit_allocator_caching() -> bool:
    """Fix glibc's mmap and trim thresholds (see the module docstring); False where that is not possible."""
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    return libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and ok


def release_freed_memory() -> None:
    """Return the free pages of glibc's heaps to the system (``malloc_trim(0)``); a no-op elsewhere."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
