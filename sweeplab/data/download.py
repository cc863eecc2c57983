"""Download a file with a timeout, verify its md5, and move it into place atomically."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from sweeplab.errors import SweeplabError


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path, md5: str | None, timeout_s: float = 30.0) -> Path:
    """Fetch url to dest; dest appears only if the whole file arrived and its md5 matches.

    Args:
        url: where to fetch from.
        dest: final path.
        md5: expected hex digest, or None to skip the check.
        timeout_s: socket timeout per read, in seconds.
    Returns:
        dest.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as resp:
            while block := resp.read(1 << 20):
                out.write(block)
        got = md5sum(Path(tmp))
        if md5 is not None and got != md5:
            raise SweeplabError(
                f"download of {url} has md5 {got}, expected {md5}; the mirror sent a bad file: "
                f"retry later or place the correct file at {dest}"
            )
        os.replace(tmp, dest)
        return dest
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", None) or e
        raise SweeplabError(f"could not download {url} ({reason})") from e
    finally:
        Path(tmp).unlink(missing_ok=True)
