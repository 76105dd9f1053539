"""Atomic writing: files and folders are either complete or absent, never half-written.

The one mechanism every writer uses: a temporary sibling renamed onto the target (:func:`atomic_open`
for files, :func:`atomic_dir` for folders such as converted models and saved runs).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator, Union

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)


def umask() -> int:
    """The process umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp creates 0600; give the file normal permissions
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


@contextlib.contextmanager
def atomic_dir(target: Path, replace: bool) -> Iterator[Path]:
    """Yield a temporary sibling folder that is renamed onto ``target`` when the block succeeds.

    With ``replace=False`` an existing ``target`` (e.g. written meanwhile by a concurrent run) wins
    and the new folder is discarded. With ``replace=True`` the old ``target`` is swapped out and
    removed. If the block raises, the temporary folder is removed and ``target`` is untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp creates 0700; give the folder normal permissions
        try:
            os.rename(tmp, target)  # atomic; succeeds onto a missing or empty folder
        except OSError:
            if not target.exists():
                raise
            if not replace:
                logger.info("%s was written meanwhile by another run; discarding this copy", target)
                shutil.rmtree(tmp, ignore_errors=True)
                return
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rename(target, trash / "old")
            os.rename(tmp, target)
            shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
