"""Use a trained model: load any saved run, evaluate it without training, export Bundle-MLLM like Hugging Face.

Two kinds of saved runs load here, for every model of the plugin:

* ``saved/<run>.pth``: the checkpoint a training run writes (:mod:`recbole_bundle.trainer.checkpoint`).
  It holds the run's whole config as JSON (``config_json``) and the weights: a RecBole-style model's
  full ``state_dict`` (BPR, LightGCN, CLHE, ...), or only what Bundle-MLLM trained (LoRA, fusion,
  projector, separator). Models fitted in one pass (Pop, ItemKNN) are re-fitted from the same split.
* a folder written by ``BundleMLLM.save_pretrained``: the LoRA adapter in peft's format (``adapter/``),
  ``fusion.safetensors`` (fusion, projector, separator), ``config.json`` (the run's config),
  ``recbole_bundle.json`` (format, exported stage, metrics) and a model card ``README.md``. The base
  LLM is never in it: the backbone comes from ``llm_name_or_path`` in the config.

Either way :func:`load` rebuilds the config from the saved one (only the keys a user can set and that
differ from today's defaults are passed back; keys RecBole derives - device, model type, the data path
joined with the dataset name, ... - are recomputed), the dataset with the same split and questions
(same seeds), the model, and loads the weights; the model comes back in eval mode, ready to score.
:func:`evaluate_saved` answers the test questions with it (``python run_recbole_bundle.py --model_file=...``).
Nothing is unpickled: checkpoints load with ``weights_only=True``, exported weights are safetensors.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import torch

from recbole_bundle.errors import BundleConfigError, BundleDataError

logger = logging.getLogger(__name__)

PRETRAINED_FORMAT = "recbole_bundle.pretrained/1"
#: Files of a ``save_pretrained`` folder.
META_FILE, CONFIG_FILE, FUSION_FILE, ADAPTER_DIR, CARD_FILE = (
    "recbole_bundle.json", "config.json", "fusion.safetensors", "adapter", "README.md")
#: Files that mark the official Bundle-MLLM release's checkpoint folder (HF Trainer output + torch.save'd modules).
OFFICIAL_FILES = ("fusion.bin", "projector_model_fuse.bin", "prompt_token.bin")

#: Keys RecBole (or the pipeline) derives from others or from the machine; never passed back to a rebuilt
#: config (``data_path`` is passed back without the dataset name RecBole joins onto it).
DERIVED_KEYS = frozenset({
    "device", "gpu_id", "MODEL_TYPE", "MODEL_INPUT_TYPE", "eval_type", "local_rank", "single_spec", "world_size",
    "nproc", "offset", "ip", "port", "encoding", "valid_neg_sample_args", "test_neg_sample_args", "config_files",
    "resume_checkpoint", "checkpoint_dir", "data_path", "model", "dataset",
})


class LoadedRun(NamedTuple):
    """A saved run, rebuilt: ``model`` is in eval mode with the saved weights."""

    config: Any           #: the rebuilt :class:`~recbole_bundle.config.BundleConfig`
    dataset: Any          #: the whole :class:`~recbole_bundle.data.dataset.BundleDataset` (ids, titles)
    model: torch.nn.Module
    train_data: Any       #: the train loader (its ``.dataset`` is the train split the model was built on)
    valid_data: Any       #: the fixed validation questions
    test_data: Any        #: the fixed test questions
    source: str           #: the checkpoint file or save_pretrained folder it came from


# --------------------------------------------------------------------------- saved configs


def saved_config(path: str | os.PathLike) -> dict[str, Any]:
    """The config a saved run was trained with (a ``.pth`` checkpoint or a ``save_pretrained`` folder)."""
    p = Path(path)
    if p.is_dir():
        check_not_official(p)
        return _read_json(p / CONFIG_FILE, "the run's config")
    from recbole_bundle.trainer.checkpoint import load_checkpoint

    return _checkpoint_config(load_checkpoint(p), p)


def _checkpoint_config(ckpt: dict, path: Path) -> dict[str, Any]:
    raw = ckpt.get("config_json")
    if not isinstance(raw, str):
        raise BundleDataError(f"{path}: this checkpoint has no 'config_json' record of its run (written by an older "
                              "recbole_bundle); retrain with this version to get a loadable checkpoint")
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise BundleDataError(f"{path}: its config record is corrupt ({e}); use another checkpoint") from None
    if not isinstance(config, dict) or not config.get("model") or not config.get("dataset"):
        raise BundleDataError(f"{path}: its config record names no model/dataset; use another checkpoint")
    return config


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise BundleDataError(
            f"{path.parent}: no {path.name} ({what}); this is not a folder written by BundleMLLM.save_pretrained. "
            f"Pass saved/<run>.pth or a folder written by model.save_pretrained(dir, config=...)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleDataError(f"{path}: not readable JSON ({e}); export the model again with save_pretrained") from None
    if not isinstance(data, dict):
        raise BundleDataError(f"{path}: must hold a JSON object, got {type(data).__name__}; export the model again")
    return data


def _strip_dataset(data_path: str, dataset: str) -> str:
    """RecBole stores ``data_path`` joined with the dataset name; the user gave the folder above it."""
    p = Path(data_path)
    return str(p.parent) if p.name == dataset else data_path


def _defaults(model: str, dataset: str) -> dict[str, Any]:
    from recbole_bundle.config import BundleConfig
    from recbole_bundle.trainer.checkpoint import config_json

    return json.loads(config_json(BundleConfig(model, dataset)))


def config_overrides(saved: Mapping[str, Any], with_paths: bool = True) -> dict[str, Any]:
    """The keys of a saved config to pass back to :class:`~recbole_bundle.config.BundleConfig` to rebuild it:
    the user-settable keys whose value differs from today's defaults for that model and dataset (keys a
    yaml declares, minus :data:`DERIVED_KEYS`), plus ``data_path`` without the dataset name RecBole joins
    onto it (``with_paths``). Keys this version no longer knows are dropped with a warning."""
    from recbole_bundle.config import RECBOLE_INTERNAL_KEYS, known_config_keys

    model, dataset = str(saved["model"]), str(saved["dataset"])
    defaults = _defaults(model, dataset)
    known = known_config_keys()
    out: dict[str, Any] = {}
    for key, value in saved.items():
        if key in DERIVED_KEYS or key in RECBOLE_INTERNAL_KEYS or defaults.get(key, object()) == value:
            continue
        if key not in known:
            logger.warning("saved config key %r is unknown to this version of recbole_bundle; ignored", key)
            continue
        out[key] = value
    if with_paths and saved.get("data_path"):
        path = _strip_dataset(str(saved["data_path"]), dataset)
        if path != _strip_dataset(str(defaults.get("data_path", "")), dataset):
            out["data_path"] = path
    return out


def _as_config_dict(values: Mapping[str, Any]) -> dict[str, Any]:
    """``config_dict`` values survive BundleConfig's literal parsing of strings (``"0"`` stays text)."""
    from recbole_bundle.config import parse_value

    return {k: repr(v) if isinstance(v, str) and parse_value(v) != v else v for k, v in values.items()}


def rebuild_config(saved: Mapping[str, Any], overrides: Mapping[str, Any] | None = None,
                   cmd_args: Sequence[str] | None = None):
    """A :class:`~recbole_bundle.config.BundleConfig` equal to the saved run's for every key that matters
    (model, dataset, split, seeds, questions, model settings); ``overrides`` (e.g. ``data_path``,
    ``device``) and ``--key=value`` ``cmd_args`` win over the saved values."""
    from recbole_bundle.config import BundleConfig

    values = {**config_overrides(saved), **dict(overrides or {})}
    return BundleConfig(str(saved["model"]), str(saved["dataset"]), config_dict=_as_config_dict(values),
                        cmd_args=list(cmd_args or []))


def training_command(saved: Mapping[str, Any]) -> str:
    """The command that trains this run again: ``python run_recbole_bundle.py --model=... --dataset=... <overrides>``."""
    parts = ["python", "run_recbole_bundle.py", f"--model={saved['model']}", f"--dataset={saved['dataset']}"]
    values = config_overrides(saved)
    if saved.get("checkpoint_dir") and saved["checkpoint_dir"] != "saved":
        values["checkpoint_dir"] = saved["checkpoint_dir"]
    for key, value in sorted(values.items()):
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) and v.isidentifier() for v in value):
            text = "[" + ",".join(value) + "]"
        elif isinstance(value, str):
            text = value
        else:
            text = repr(value)
        parts.append(shlex.quote(f"--{key}={text}"))
    return " ".join(parts)


# --------------------------------------------------------------------------- building a run


def build_run(config, source: str = "") -> LoadedRun:
    """Dataset, loaders and a fresh (untrained) model for ``config``, in the order the training pipeline
    (:func:`recbole_bundle.quick_start.run_recbole_bundle`) builds them, with the same seeds."""
    from recbole.utils import init_seed

    from recbole_bundle.data.prepare import create_dataset, data_preparation
    from recbole_bundle.quick_start import build_model

    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = build_model(config, train_data, valid_data)
    model.run_config = config  # what save_pretrained writes when no config is given
    return LoadedRun(config, dataset, model, train_data, valid_data, test_data, source)


def fit_in_one_pass(run: LoadedRun) -> None:
    """Fit a model trained in one pass over the training data (RecBole's traditional models: Pop, ItemKNN)."""
    from recbole_bundle.registry import get_trainer

    trainer = get_trainer(run.config["MODEL_TYPE"], run.config["model"], run.config.model_class)(run.config, run.model)
    trainer.fit(run.train_data, None, verbose=False, saved=False, show_progress=False)


def load(path: str | os.PathLike, data_path: str | None = None, cmd_args: Sequence[str] | None = None,
         **overrides: Any) -> LoadedRun:
    """Load a saved run of ANY model for scoring: a ``saved/<run>.pth`` checkpoint or a folder written by
    ``BundleMLLM.save_pretrained``. Returns :class:`LoadedRun` ``(config, dataset, model, train_data,
    valid_data, test_data, source)`` with the model in eval mode::

        run = recbole_bundle.load("saved/LightGCN-sample-seed2020-....pth")
        batch = next(iter(run.test_data))
        scores = recbole_bundle.score_candidates(run.model, batch)   # [B, K]

    ``data_path`` (the folder holding ``<dataset>/``) and other config keys (``overrides``, or
    ``--key=value`` strings in ``cmd_args``) replace the saved values; keys that define the experiment
    (dataset, K, model, backbone, scoring, ...) must stay as saved, or the weights are refused.
    """
    p = Path(path)
    if not p.exists():
        raise BundleDataError(f"{p}: no such saved run; pass saved/<run>.pth (written by a training run) or a folder "
                              "written by BundleMLLM.save_pretrained")
    if data_path is not None:
        overrides["data_path"] = str(data_path)
    if p.is_dir():
        return load_pretrained(p, cmd_args=cmd_args, **overrides)
    return _load_checkpoint_run(p, overrides, cmd_args)


def _load_checkpoint_run(path: Path, overrides: dict, cmd_args: Sequence[str] | None) -> LoadedRun:
    from recbole.utils import ModelType

    from recbole_bundle.trainer.checkpoint import check_compatible, load_checkpoint, load_weights

    ckpt = load_checkpoint(path)
    config = rebuild_config(_checkpoint_config(ckpt, path), overrides, cmd_args)
    check_compatible(ckpt, config, path)
    run = build_run(config, str(path))
    model = run.model
    if hasattr(model, "load_trained_state_dict"):  # Bundle-MLLM & co.: only what was trained
        if ckpt.get("stage"):
            model.set_stage(ckpt["stage"])
        try:
            model.load_trained_state_dict(ckpt["state_dict"])
        except BundleConfigError as e:
            raise BundleConfigError(f"{path}: {e}") from None
    elif config["MODEL_TYPE"] == ModelType.TRADITIONAL:  # fitted in one pass: fit again on the same split
        fit_in_one_pass(run)
    else:
        load_weights(model, ckpt["state_dict"], path)
        model.load_other_parameter(ckpt.get("other_parameter"))
    model.eval()
    logger.info("loaded %s (%s on %s) from %s", type(model).__name__, config["model"], config["dataset"], path)
    return run


def evaluate_saved(path: str | os.PathLike, cmd_args: Sequence[str] | None = None, show_progress: bool | None = None,
                   **overrides: Any) -> dict[str, Any]:
    """Answer the test questions with a saved run, without training (``run_recbole_bundle.py --model_file``).

    Returns ``{"model", "dataset", "seed", "test_result", "source", "config"}``; ``test_result`` is the
    metric dict the training run printed (the same questions, the same weights: the same numbers), with
    ``recall@K`` / ``ndcg@K`` over the whole catalogue when ``catalogue_metrics`` is set (e.g. as an override).
    With ``save_predictions: True`` the answers go beside the saved run (``<run>.test_predictions.jsonl``).
    """
    from recbole.utils import init_logger

    from recbole_bundle.compat import make_output_dirs
    from recbole_bundle.registry import get_trainer

    run = load(path, cmd_args=cmd_args, **overrides)
    config = run.config
    make_output_dirs(config)
    init_logger(config)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"], config.model_class)(config, run.model)
    p = Path(path)
    trainer.saved_model_file = str(p if p.is_file() else p / "model.pth")  # predictions are written beside it
    progress = config["show_progress"] if show_progress is None else show_progress
    result = trainer.evaluate(run.test_data, load_best_model=False, show_progress=progress)
    if config["catalogue_metrics"]:  # recall@K / ndcg@K over the whole catalogue, as a training run reports them
        from recbole_bundle.ranking import catalogue_metrics

        result = {**dict(result), **catalogue_metrics(run.model, run.test_data, config, run.train_data.dataset)}
    logging.getLogger().info(f"test result ({p}): {dict(result)}")
    return {"model": config["model"], "dataset": config["dataset"], "seed": config["seed"],
            "test_result": dict(result), "source": str(p), "config": dict(config.final_config_dict)}


# --------------------------------------------------------------------------- save_pretrained folders


def check_not_official(folder: Path) -> None:
    """Refuse the official Bundle-MLLM release's checkpoint folder with what is and is not supported."""
    found = [f for f in OFFICIAL_FILES if (folder / f).is_file()]
    if not found or (folder / META_FILE).is_file():
        return
    base = "meta-llama/Llama-2-7b-hf"
    try:
        base = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path") or base
    except (OSError, ValueError):
        pass
    raise BundleConfigError(
        f"{folder} is a checkpoint of the official Bundle-MLLM code (xhLiu/Bundle-MLLM: {', '.join(found)} beside a "
        f"peft adapter), which this port cannot load. Not supported: its fusion.bin belongs to another module "
        f"(HierachicalEncoder: an MLP for the media feature, linear maps for the LightGCN/CF features, attention "
        f"without an output projection; this port's ModalityFusion has other layers), its prompts and answer letters "
        f"are Llama-2 specific, and its .bin files are pickles (recbole_bundle loads weights only with "
        f"weights_only=True or safetensors). Its base LLM {base!r} is not available offline either. Supported: "
        f"train here and load the result - python run_recbole_bundle.py --model=BundleMLLM --dataset=pog "
        f"--config_files=configs/bundle_mllm_paper.yaml, then --model_file=saved/<run>.pth or a folder written by "
        f"BundleMLLM.save_pretrained (adapter/ in peft format, fusion.safetensors, config.json). The official LoRA "
        f"adapter alone loads with peft (PeftModel.from_pretrained(<{base}>, '{folder}')) outside recbole_bundle."
    )


def _plain_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float] | None:
    return None if metrics is None else {str(k): float(v) for k, v in dict(metrics).items()}


def _config_dict(config: Any) -> dict[str, Any]:
    from recbole_bundle.trainer.checkpoint import config_json

    if config is None:
        raise BundleConfigError(
            "save_pretrained needs the run's config to write config.json and the model card (from_pretrained rebuilds "
            "the dataset and model from it): model.save_pretrained(dir, config=result['config']) after "
            "run_recbole_bundle, or pass the BundleConfig the model was built with"
        )
    if isinstance(config, Mapping) and "config" in config and "test_result" in config:  # a run_recbole_bundle result
        config = config["config"]
    return json.loads(config_json(config))


def model_card(config: Mapping[str, Any], stage: str, metrics: Mapping[str, float] | None, files: Sequence[str]) -> str:
    """The ``README.md`` of a ``save_pretrained`` folder: what was trained on what, its metrics, how to
    reproduce and how to use it."""
    stages = config.get("stages") or []
    lora = (f"r={config.get('lora_r')}, alpha={config.get('lora_alpha')}, dropout={config.get('lora_dropout')}, "
            f"on {', '.join(config.get('lora_target_modules') or [])}") if config.get("lora_r") else "none"
    rows = [
        ("model", config.get("model")), ("dataset", config.get("dataset")),
        ("backbone (llm_name_or_path; not included here)", config.get("llm_name_or_path")),
        ("K (n_candidates)", config.get("n_candidates")), ("negatives", config.get("neg_strategy")),
        ("scoring", config.get("scoring")),
        ("stages", " -> ".join(stages) if stages else "none (zero-shot)"), ("exported in stage", stage),
        ("fused token", f"{config.get('use_fused_token')} (modalities: {', '.join(config.get('modalities') or []) or '-'}; "
                        f"separator: {config.get('separator')})"),
        ("LoRA", lora), ("seed", config.get("seed")),
    ]
    lines = [f"# {config.get('model')} on {config.get('dataset')}", "",
             "Exported by recbole_bundle (`BundleMLLM.save_pretrained`): only the trained weights, never the base LLM.", "",
             "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], ""]
    lines += ["## Test metrics", ""]
    if metrics:
        lines += ["| metric | value |", "|---|---|", *[f"| {k} | {v:.4f} |" for k, v in metrics.items()]]
    else:
        lines.append("not recorded (pass `metrics=result['test_result']` to save_pretrained)")
    lines += ["", "## Trained with", "", "```bash", training_command(config), "```", "",
              "## Use", "", "```bash",
              "python run_recbole_bundle.py --model_file=<this folder>                     # test questions, no training",
              "python -m recbole_bundle.complete --model_file=<this folder> --items=<ids or titles> --top_n=10",
              "```", "", "```python", "import recbole_bundle",
              "run = recbole_bundle.load('<this folder>')   # (config, dataset, model, loaders), model in eval mode",
              "```", "", "## Files", ""]
    lines += [f"* {f}" for f in files]
    return "\n".join(lines) + "\n"


def save_pretrained(model: torch.nn.Module, directory: str | os.PathLike, config: Any = None,
                    metrics: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` (a Bundle-MLLM or LLM baseline) to ``directory`` atomically: ``adapter/`` (peft),
    ``fusion.safetensors``, ``config.json``, ``recbole_bundle.json`` and the model card ``README.md``.
    An existing export there is replaced; any other non-empty folder is refused."""
    from safetensors.torch import save as safetensors_bytes

    from recbole_bundle._version import __version__
    from recbole_bundle.io import atomic_write_text
    from recbole_bundle.io import atomic_dir, umask

    cfg = _config_dict(config if config is not None else getattr(model, "run_config", None))
    out = Path(directory).expanduser()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / META_FILE).is_file())):
        raise BundleConfigError(f"save_pretrained: {str(out)!r} exists and is not an earlier export (no {META_FILE}); "
                                "refusing to overwrite it - pick a new or empty folder")
    extra = {k: v.contiguous() for k, v in model.trained_state_dict().items() if "lora_" not in k}
    files = []
    with atomic_dir(out, replace=True) as tmp:
        if model.use_lora:
            model.llm.save_pretrained(str(tmp / ADAPTER_DIR))
            files.append(f"`{ADAPTER_DIR}/`: the LoRA adapter in peft's format (PeftModel.from_pretrained loads it "
                         f"onto the backbone {cfg.get('llm_name_or_path')})")
        if extra:
            with open(tmp / FUSION_FILE, "wb") as f:
                f.write(safetensors_bytes(extra, metadata={"format": "pt", "model": str(cfg.get("model"))}))
            files.append(f"`{FUSION_FILE}`: {', '.join(sorted({k.split('.')[0] for k in extra}))} weights")
        atomic_write_text(tmp / CONFIG_FILE, json.dumps(cfg, indent=1, sort_keys=True) + "\n")
        files.append(f"`{CONFIG_FILE}`: the run's config (dataset, split, seed, K, backbone, prompt, ...)")
        meta = {"format": PRETRAINED_FORMAT, "recbole_bundle": __version__, "model": cfg.get("model"),
                "stage": model.stage, "metrics": _plain_metrics(metrics),
                "lora": bool(model.use_lora), "fusion": bool(extra)}
        atomic_write_text(tmp / META_FILE, json.dumps(meta, indent=1) + "\n")
        files.append(f"`{META_FILE}`: export format, the stage the model was exported in, metrics")
        atomic_write_text(tmp / CARD_FILE, model_card(cfg, model.stage, meta["metrics"], files))
        mode = 0o666 & ~umask()
        for f in tmp.rglob("*"):  # peft/safetensors may create private (0600) files: normal permissions
            if f.is_file():
                os.chmod(f, mode)
    logger.info("exported %s to %s (adapter: %s, fusion weights: %d tensors)", cfg.get("model"), out, model.use_lora,
                len(extra))
    return out


def load_pretrained(directory: str | os.PathLike, cmd_args: Sequence[str] | None = None, **overrides: Any) -> LoadedRun:
    """Rebuild a run from a ``save_pretrained`` folder: config (from ``config.json``, ``overrides`` win),
    dataset with the same split, the model with its backbone from ``llm_name_or_path``; then the adapter
    (peft's ``load_adapter``) and the fusion weights (safetensors) are loaded. Model in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from recbole_bundle.trainer.checkpoint import IDENTITY_KEYS, _plain

    folder = Path(directory).expanduser()
    check_not_official(folder)
    meta = _read_json(folder / META_FILE, "the export record")
    if meta.get("format") != PRETRAINED_FORMAT:
        raise BundleDataError(f"{folder / META_FILE}: format {meta.get('format')!r} is not {PRETRAINED_FORMAT!r}; "
                              "export the model again with this version's save_pretrained")
    saved = _read_json(folder / CONFIG_FILE, "the run's config")
    config = rebuild_config(saved, overrides, cmd_args)
    diffs = [f"{k}: saved {saved.get(k)!r} vs now {_plain(config[k])!r}" for k in IDENTITY_KEYS
             if k in saved and _plain(config[k] if k in config else None) != saved.get(k)]
    if diffs:
        raise BundleConfigError(f"{folder} was exported for another experiment; differing config keys: {'; '.join(diffs)}. "
                                "Load it without overriding these keys.")
    run = build_run(config, str(folder))
    model = run.model
    if not hasattr(model, "load_trained_state_dict"):
        raise BundleConfigError(f"{folder}: save_pretrained folders hold LLM models (BundleMLLM, LLMTextLoRA); its config "
                                f"names {config['model']}")
    if meta.get("stage"):
        model.set_stage(meta["stage"])
    expected = set(model.trained_state_dict())
    adapter = folder / ADAPTER_DIR
    if model.use_lora:
        if not (adapter / "adapter_config.json").is_file():
            raise BundleDataError(f"{adapter}: missing (or no adapter_config.json); the model has LoRA (lora_r="
                                  f"{config['lora_r']}) - export it again with save_pretrained")
        _check_adapter_config(adapter, model.llm.peft_config["default"])
        try:
            result = model.llm.load_adapter(str(adapter), adapter_name="default", is_trainable=False)
        except Exception as e:  # noqa: BLE001 - peft/safetensors raise many kinds on damaged files
            raise BundleDataError(f"{adapter}: the LoRA adapter does not load ({type(e).__name__}: {str(e)[:200]}); "
                                  "export the model again") from None
        bad = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
        if bad:
            raise BundleDataError(f"{adapter}: adapter weights {bad[:3]} do not fit the model; export it again")
    fusion_keys = {k for k in expected if "lora_" not in k}
    state: dict[str, torch.Tensor] = {}
    if fusion_keys:
        try:
            state = load_file(str(folder / FUSION_FILE))
        except (OSError, SafetensorError) as e:
            raise BundleDataError(f"{folder / FUSION_FILE}: not readable ({e}); it holds the fusion/projector/separator "
                                  "weights - export the model again") from None
    missing, unexpected = sorted(fusion_keys - set(state)), sorted(set(state) - fusion_keys)
    if missing or unexpected:
        raise BundleDataError(f"{folder / FUSION_FILE}: does not match the model built from config.json (missing "
                              f"{missing[:5]}, unexpected {unexpected[:5]}); export the model again")
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise BundleDataError(f"{folder / FUSION_FILE}: weights do not fit ({str(e).splitlines()[0][:200]})") from None
    model.set_stage(model.stage)  # drops caches built from the old weights
    model.eval()
    logger.info("loaded %s on %s from %s", config["model"], config["dataset"], folder)
    return run


def _check_adapter_config(adapter: Path, current) -> None:
    saved = _read_json(adapter / "adapter_config.json", "the peft adapter config")
    mine = {"r": current.r, "lora_alpha": current.lora_alpha, "target_modules": sorted(current.target_modules)}
    theirs = {"r": saved.get("r"), "lora_alpha": saved.get("lora_alpha"),
              "target_modules": sorted(saved.get("target_modules") or [])}
    if mine != theirs:
        raise BundleConfigError(f"{adapter}/adapter_config.json: LoRA {theirs} does not match config.json's {mine} "
                                "(lora_r, lora_alpha, lora_target_modules); export the model again")
