"""Feature-extraction throughput (items/s) per encoder on the shipped sample's items (480).

    python benchmarks/feature_throughput.py [--batch-size=32]

Visual: tiny random BLIP2 on the sample's generated 32x32 images; audio: tiny random CLAP on 1 s,
16 kHz generated WAV clips; text: the real all-MiniLM-L6-v2 on the titles. Each goes through
``python -m recbole_bundle.features`` (the same code a user runs). Prints items/s and, measured in
the same run, the share of time spent reading/decoding media (the rest is the encoder).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from recbole_bundle.features.__main__ import main as features_main
from recbole_bundle.features.encoders import build_encoder
from recbole_bundle.features.media import AUDIO_EXTS, IMAGE_EXTS, index_media
from recbole_bundle.data.sample import DEFAULT_N_ITEMS, write_sample_media
from recbole_bundle.testing import tiny_blip2, tiny_clap

ROOT = Path(__file__).resolve().parents[1]


def _audio(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        x = np.sin(np.linspace(0, 2 * np.pi * rng.uniform(100, 2000), 16000)) * 0.5
        with wave.open(str(folder / f"i{i:03d}.wav"), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
            w.writeframes((x * 32767).astype(np.int16).tobytes())
    return folder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="feat_bench_"))
    try:
        shutil.copytree(ROOT / "dataset" / "sample", tmp / "data" / "sample")
        images = write_sample_media(tmp / "media")
        audio = _audio(tmp / "media" / "audio", DEFAULT_N_ITEMS)
        blip2, clap = tiny_blip2(tmp / "blip2"), tiny_clap(tmp / "clap")
        runs = [("visual (tiny BLIP2)", "visual", ["--images", str(images), "--encoder", str(blip2)], images, IMAGE_EXTS, str(blip2)),
                ("audio (tiny CLAP)", "audio", ["--audio", str(audio), "--encoder", str(clap)], audio, AUDIO_EXTS, str(clap)),
                ("text (all-MiniLM-L6-v2)", "text", [], None, None, None)]
        print(f"| encoder | items/s | share of time reading media |\n|---|---|---|")
        for label, modality, extra, folder, exts, enc_name in runs:
            start = time.perf_counter()
            features_main(["--dataset=sample", f"--modality={modality}", f"--data_path={tmp / 'data'}", "--no-progress",
                           f"--batch-size={args.batch_size}", *extra])
            seconds = time.perf_counter() - start
            share = "-"
            if folder is not None:
                enc = build_encoder(modality, encoder=enc_name)
                files = index_media(folder, exts)
                t0 = time.perf_counter()
                for path in files.values():
                    enc.read(path)
                share = f"{(time.perf_counter() - t0) / seconds:.0%}"
            print(f"| {label} | {DEFAULT_N_ITEMS / seconds:.1f} | {share} |", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
