"""Atomic file writing: outputs are either complete or absent, never half-written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator, Union

PathLike = Union[str, os.PathLike]


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it is renamed onto ``path``.

    If the block raises, the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_torch_save(obj: object, path: PathLike) -> None:
    """``torch.save`` to a temporary file, then rename: a killed run never leaves a torn checkpoint.

    Pickle protocol 2 (torch's default): the ``weights_only`` loader every file goes through
    (:func:`recbole_bundle.compat.torch_load`) does not read protocol 4's frames; tensors are stored
    outside the pickle in torch's zip format, so the protocol does not limit checkpoint size.
    """
    import torch

    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def atomic_save_npz(path: PathLike, **arrays) -> None:
    """``numpy.savez`` atomically (the file name is kept exactly as given)."""
    import numpy as np

    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)
