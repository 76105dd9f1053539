"""Finding and reading item media: ``<dir>/<item token>.<ext>`` images and audio clips.

A missing file or one that cannot be decoded raises :class:`MediaError`; extraction records the
reason and marks the item's modality missing instead of stopping. Audio: WAV through the standard
library, ``.npy`` arrays (with ``--sampling-rate``), anything else through ``soundfile`` when it is
installed. Resampling to the encoder's rate is linear interpolation (written here: no resampler is
in the pinned stack; CLAP's mel front end is insensitive to its small aliasing).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
AUDIO_EXTS = (".wav", ".flac", ".mp3", ".ogg", ".npy")


class MediaError(Exception):
    """This item's media is absent or unreadable (the item gets a missing modality)."""


def index_media(folder: Path, exts: tuple[str, ...]) -> dict[str, Path]:
    """Map item token -> media file for the files in ``folder`` (first extension in ``exts`` wins)."""
    out: dict[str, Path] = {}
    rank = {e: n for n, e in enumerate(exts)}
    for p in sorted(Path(folder).iterdir()):
        ext = p.suffix.lower()
        if p.is_file() and ext in rank:
            if p.stem not in out or rank[ext] < rank[out[p.stem].suffix.lower()]:
                out[p.stem] = p
    return out


def load_image(path: Path | None):
    """An RGB ``PIL.Image`` (MediaError if absent or not decodable)."""
    from PIL import Image, UnidentifiedImageError

    if path is None:
        raise MediaError("no image file")
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise MediaError(f"unreadable image {path.name}: {type(err).__name__}") from None


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        width, channels, rate, n = w.getsampwidth(), w.getnchannels(), w.getframerate(), w.getnframes()
        raw = w.readframes(n)
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width in (2, 4):
        dt = np.int16 if width == 2 else np.int32
        x = np.frombuffer(raw, dt).astype(np.float32) / float(np.iinfo(dt).max)
    else:
        raise MediaError(f"unsupported WAV sample width {width} bytes in {path.name}")
    return x.reshape(-1, channels).mean(1), rate


def load_audio(path: Path | None, target_rate: int, npy_rate: int | None = None) -> np.ndarray:
    """A mono float32 waveform at ``target_rate`` (MediaError if absent, unreadable or silent-empty)."""
    if path is None:
        raise MediaError("no audio file")
    ext = path.suffix.lower()
    try:
        if ext == ".wav":
            x, rate = _read_wav(path)
        elif ext == ".npy":
            x = np.load(path, allow_pickle=False).astype(np.float32)
            x = x.mean(-1) if x.ndim == 2 else x
            rate = npy_rate or target_rate
        else:
            try:
                import soundfile
            except ImportError:
                raise MediaError(f"{path.name}: reading {ext} needs `pip install soundfile` (WAV and .npy need nothing)") from None
            x, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
            x = x.mean(1)
    except MediaError:
        raise
    except (wave.Error, EOFError, OSError, ValueError, RuntimeError) as err:
        raise MediaError(f"unreadable audio {path.name}: {type(err).__name__}") from None
    if x.ndim != 1 or x.size == 0 or not np.isfinite(x).all():
        raise MediaError(f"unreadable audio {path.name}: empty or non-finite samples")
    if rate != target_rate:
        n_out = max(1, int(round(x.size * target_rate / rate)))
        x = np.interp(np.linspace(0, x.size - 1, n_out), np.arange(x.size), x).astype(np.float32)
    return x
