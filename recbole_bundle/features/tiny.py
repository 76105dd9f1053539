"""Tiny random BLIP2 and CLAP checkpoints (saved with ``save_pretrained``) for tests and offline demos.

Their features carry no meaning; they exercise exactly the loading and extraction code that real
checkpoints (``Salesforce/blip2-opt-2.7b``, ``laion/clap-htsat-unfused``) go through.
"""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_blip2(path: str | Path, image_size: int = 32, seed: int = 0) -> Path:
    """A 1-layer BLIP2 (vision 32-d, Q-Former 32-d with 4 queries, OPT 16-d) + its image processor."""
    from transformers import Blip2Config, Blip2Model, BlipImageProcessor

    torch.manual_seed(seed)
    config = Blip2Config(
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
                           image_size=image_size, patch_size=8),
        qformer_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                            encoder_hidden_size=32, vocab_size=100),
        text_config=dict(model_type="opt", hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=20,
                         vocab_size=100, word_embed_proj_dim=16),
        num_query_tokens=4,
    )
    Blip2Model(config).save_pretrained(path)
    BlipImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(path)
    return Path(path)


def tiny_clap(path: str | Path, sampling_rate: int = 16000, seed: int = 0) -> Path:
    """A 2-stage HTSAT-like CLAP (32-d, 16 mel bins, 1 s clips at ``sampling_rate``) + its feature extractor."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    torch.manual_seed(seed)
    config = ClapConfig(
        text_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, vocab_size=100),
        audio_config=dict(hidden_size=32, num_mel_bins=16, spec_size=64, window_size=4, depths=[1, 1],
                          num_attention_heads=[2, 2], patch_embeds_hidden_size=16, enable_fusion=False,
                          patch_stride=[4, 4], patch_size=4),
        projection_dim=16,
    )
    ClapModel(config).save_pretrained(path)
    # 1 s at hop 64 = 251 frames <= spec_size * (spec_size // mel bins) = 256: fits the Swin input
    ClapFeatureExtractor(feature_size=16, sampling_rate=sampling_rate, max_length_s=1, fft_window_size=256,
                         hop_length=sampling_rate // 250, truncation="rand_trunc").save_pretrained(path)
    return Path(path)
