"""Extract item features for a dataset: one command per modality.

    python -m recbole_bundle.features --dataset=pog --modality=visual --images=DIR [--encoder=Salesforce/blip2-opt-2.7b]
    python -m recbole_bundle.features --dataset=spotify --modality=audio --audio=DIR [--encoder=laion/clap-htsat-unfused]
    python -m recbole_bundle.features --dataset=sample --modality=text [--encoder=all-minilm-l6-v2]
    python -m recbole_bundle.features --dataset=sample --modality=relational
    python -m recbole_bundle.features --dataset=spotify --modality=cf

Media files are ``<DIR>/<item token>.<ext>``. Output: ``<data_path>/<dataset>/<dataset>.feat_<name>.npz``
(``--name``, default the modality) + ``.json`` metadata. A killed extraction resumes when the same
command is run again (``--restart`` discards the unfinished part). Other ``--key=value`` arguments are
RecBole/plugin config keys (e.g. ``--data_path``, ``--seed``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from recbole_bundle.errors import BundleConfigError, BundleDataError, BundleError, cli_main  # noqa: F401

MODALITIES = ("visual", "audio", "text", "relational", "cf")


def parse_args(argv: Sequence[str] | None):
    p = argparse.ArgumentParser(prog="python -m recbole_bundle.features", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("--dataset", required=True)
    p.add_argument("--modality", required=True, choices=MODALITIES)
    p.add_argument("--name", help="feature name in the file name (default: the modality)")
    p.add_argument("--images", help="visual: folder of <item token>.<jpg|png|...> files")
    p.add_argument("--audio", help="audio: folder of <item token>.<wav|npy|flac|...> files")
    p.add_argument("--encoder", help="model folder, Hugging Face name or preset (defaults per modality in the README)")
    p.add_argument("--backend", default="transformers", help="transformers (default), lavis (visual) or laion_clap (audio)")
    p.add_argument("--pooling", default="qformer", choices=("qformer", "vision"), help="visual/transformers: BLIP2 feature")
    p.add_argument("--npy-rate", type=int, help="audio: sampling rate of .npy clips (default: the encoder's)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--epochs", type=int, default=100, help="relational/cf: LightGCN epochs (relational stops early on valid)")
    p.add_argument("--restart", action="store_true", help="discard an unfinished extraction instead of resuming it")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_known_args(argv)


def main(argv: Sequence[str] | None = None) -> Path:
    args, rest = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from recbole_bundle.config import BundleConfig
    from recbole_bundle.features.encoders import build_encoder
    from recbole_bundle.features.extract import extract_encoder_features
    from recbole_bundle.graph_features import export_graph_features
    from recbole_bundle.features.media import AUDIO_EXTS, IMAGE_EXTS, index_media
    from recbole_bundle.data.prepare import create_dataset

    if args.batch_size < 1 or args.epochs < 1:
        raise BundleConfigError(f"--batch-size ({args.batch_size}) and --epochs ({args.epochs}) must be >= 1")
    check_device(args.device)
    if args.modality not in ("relational", "cf"):  # cheap checks first: the encoder loads only after the data
        from recbole_bundle.features.encoders import BACKENDS

        if (args.modality, args.backend) not in BACKENDS:
            offered = sorted(f"{m}/{b}" for m, b in BACKENDS)
            raise BundleConfigError(f"no {args.backend!r} backend for modality {args.modality!r}; offered: {offered}")
    if args.modality in ("visual", "audio"):  # before the dataset is loaded: a wrong folder fails at once
        flag = "images" if args.modality == "visual" else "audio"
        folder = getattr(args, flag)
        if not folder or not Path(folder).is_dir():
            raise BundleConfigError(f"--modality={args.modality} needs --{flag}=<folder of <item token>.<ext> files>; "
                                    f"got {folder!r}, which is not a folder")
    model = "LightGCN" if args.modality in ("relational", "cf") else "Pop"
    config = BundleConfig(model, args.dataset, config_dict={"show_progress": not args.no_progress}, cmd_args=rest)
    dataset = create_dataset(config)
    if args.modality in ("relational", "cf"):
        return export_graph_features(config, dataset, args.modality, epochs=args.epochs, restart=args.restart,
                                     name=args.name)

    options = {}
    if args.modality == "visual" and args.backend == "transformers":
        options["pooling"] = args.pooling
    if args.modality == "audio":
        options["npy_rate"] = args.npy_rate
    if args.modality == "text":
        titles = dict(zip(map(str, dataset.field2id_token[dataset.iid_field]), dataset.item_titles()))
        source, describe = titles.get, {"source": f"{args.dataset}.item titles"}
    else:
        flag, exts = ("images", IMAGE_EXTS) if args.modality == "visual" else ("audio", AUDIO_EXTS)
        folder = getattr(args, flag)
        files = index_media(Path(folder), exts)
        tokens = [str(t) for t in dataset.field2id_token[dataset.iid_field][1:]]
        if not set(files) & set(tokens):  # nothing to encode: refuse instead of writing a 0-wide feature file
            raise BundleDataError(
                f"--{flag}={folder} holds no media file of a {args.dataset} item: found {len(files)} file(s) with "
                f"extensions {', '.join(exts)}{' (e.g. ' + ', '.join(sorted(files)[:3]) + ')' if files else ''}, but "
                f"files must be named <item token>.<ext>, e.g. {tokens[0]}{exts[0]} for item '{tokens[0]}'"
            )
        source, describe = files.get, {"source": str(Path(folder).resolve())}
    encoder = build_encoder(args.modality, args.backend, args.encoder, args.device, **options)
    return extract_encoder_features(dataset, encoder, source, args.name or args.modality, args.batch_size,
                                    restart=args.restart, show_progress=not args.no_progress, describe=describe)


def check_device(device: str) -> None:
    """``--device`` must name a device this machine has (no silent CPU fallback, no torch traceback)."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise BundleConfigError(f"--device={device!r} is not a torch device; use cpu, cuda or cuda:<index>") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BundleConfigError(f"--device={device} asks for a GPU but torch.cuda.is_available() is False on this "
                                f"machine; run on a CUDA machine or use --device=cpu")
    if dev.type not in ("cpu", "cuda"):
        raise BundleConfigError(f"--device={device!r} is not supported; use cpu, cuda or cuda:<index>")


if __name__ == "__main__":
    sys.exit(cli_main(lambda: sys.stdout.write(f"{main()}\n")))
