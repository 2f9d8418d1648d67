"""An upload's file and rows never outlive it on disk: the file received ahead of its
validation, and the spool past its in-memory size, are files with no name (nothing in the
temporary directory, even while they are written), their space freed when the upload ends
and, if the process dies, by the kernel, so a restart has nothing to clean up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.uploads.read_ahead import ReadAhead
from services.uploads.spool import RowSpool
from services.uploads.validator import AcceptedRow

# Past the spool's 1 MiB in memory, so it is on disk.
ROWS = 30_000
_SPOOL_AND_WAIT = f"""
import sys, time
from services.uploads.spool import RowSpool
from services.uploads.validator import AcceptedRow
spool = RowSpool(["name"], max_bytes=1 << 26).__enter__()
for i in range({ROWS}):
    spool.add(AcceptedRow(i + 1, f"holder{{i}}@example.org", None, {{"name": "Ada Lovelace"}}))
assert spool._file._rolled
print("spooled", flush=True)
time.sleep(60)
"""


def _open_files(pid: int) -> list[str]:
    """What the process's descriptors point at (one closed meanwhile, such as the listing's
    own, is left out)."""
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.append(os.readlink(fd))
        except FileNotFoundError:
            continue
    return found


def test_a_spool_on_disk_has_no_name_and_is_gone_when_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with RowSpool(["name"], max_bytes=1 << 26) as spool:
        for i in range(ROWS):
            spool.add(AcceptedRow(i + 1, f"holder{i}@example.org", None, {"name": "Ada"}))
        assert spool.bytes > 1 << 20
        assert list(tmp_path.iterdir()) == []
        spooled = [f for f in _open_files(os.getpid()) if f.startswith(str(tmp_path))]
        assert len(spooled) == 1 and spooled[0].endswith("(deleted)")
    assert [f for f in _open_files(os.getpid()) if f.startswith(str(tmp_path))] == []


@pytest.mark.integration
def test_a_killed_upload_process_leaves_no_spool_file(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": os.getcwd()}
    with subprocess.Popen(
        [sys.executable, "-c", _SPOOL_AND_WAIT], env=env, stdout=subprocess.PIPE
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == b"spooled\n"
            held = [f for f in _open_files(child.pid) if f.startswith(str(tmp_path))]
            assert len(held) == 1 and held[0].endswith("(deleted)")
            assert list(tmp_path.iterdir()) == []
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
    assert list(tmp_path.iterdir()) == []


async def test_a_file_received_ahead_has_no_name_and_is_gone_when_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    async def client() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"holder@example.org,Ada Lovelace\r\n" * 1000

    with ReadAhead(limit=1 << 26) as ahead:
        ahead.start(client())
        await ahead.receiving
        assert ahead.complete
        assert list(tmp_path.iterdir()) == []
        received = [f for f in _open_files(os.getpid()) if f.startswith(str(tmp_path))]
        assert len(received) == 1 and received[0].endswith("(deleted)")
    assert [f for f in _open_files(os.getpid()) if f.startswith(str(tmp_path))] == []
