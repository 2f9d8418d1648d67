"""The uploads process's large buffers stay mappings of their own, returned when freed, even
after a larger one was freed (which would otherwise move glibc's threshold past them)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_BUFFER_AFTER_A_LARGER_ONE = """
import ctypes, sys
from services.uploads.allocator import fix_mmap_threshold

class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
if not hasattr(libc, "mallinfo2"):
    print("no glibc")
    sys.exit()
libc.mallinfo2.restype = Mallinfo2
print("fixed" if fix_mmap_threshold() else "not fixed")
larger = bytearray(8 << 20)
del larger
mapped = libc.mallinfo2().hblkhd
buffer = bytearray(1 << 20)
print(libc.mallinfo2().hblkhd - mapped >= 1 << 20)
"""


@pytest.mark.integration  # a child process: the threshold is the whole process's
def test_a_buffer_after_a_larger_one_is_still_its_own_mapping() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    env["PYTHONPATH"] = os.getcwd()
    out = subprocess.run(
        [sys.executable, "-c", _BUFFER_AFTER_A_LARGER_ONE],
        env=env,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    if out.startswith("no glibc"):
        pytest.skip("mallinfo2 is glibc's (2.33 and later)")
    assert out.split() == ["fixed", "True"]


@pytest.mark.integration
def test_an_operators_threshold_is_kept() -> None:
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from services.uploads.allocator import fix_mmap_threshold; "
            "print(fix_mmap_threshold())",
        ],
        env=env,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    assert out.split() == ["False"]
