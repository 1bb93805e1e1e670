"""Small file helpers shared by the writers: every file we produce appears whole or not at all."""

from __future__ import annotations

import os
import tempfile


def atomic_write(path, write_fn) -> None:
    """Call write_fn(fileobj) on a temporary file beside `path`, then rename it into place.

    A failure (or an interrupt) leaves any previous file untouched and no partial file behind.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))
