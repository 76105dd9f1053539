"""The one pipeline every entry point uses (CLI, comparison runner, tests)."""

from __future__ import annotations

import logging
import os
from logging import getLogger
from pathlib import Path
from typing import Any, Sequence

from recbole.utils import ModelType, init_logger, init_seed

from recbole_bundle import distributed
from recbole_bundle.config import BundleConfig
from recbole_bundle.compat import make_output_dirs
from recbole_bundle.data.prepare import create_dataset, data_preparation
from recbole_bundle.graph_features import prepare_item_features
from recbole_bundle.registry import get_trainer


def run_recbole_bundle(
    model: str | type,
    dataset: str,
    config_file_list: Sequence[str] | None = None,
    config_dict: dict | None = None,
    cmd_args: Sequence[str] | None = None,
    saved: bool = True,
) -> dict[str, Any]:
    """Train ``model`` on ``dataset`` and answer the test questions.

    Returns a dict with ``model``, ``dataset``, ``seed``, ``best_valid_score``, ``best_valid_result``,
    ``test_result`` (e.g. ``{'hitrate@1': 0.41, 'validratio': 1.0, 'hitrate@1(valid)': 0.41}``, plus
    ``recall@K`` / ``ndcg@K`` over the whole catalogue when ``catalogue_metrics`` is set),
    ``checkpoint``, the final ``config`` as a plain dict, the validation ``curve`` (one entry per
    epoch and stage), and in memory the trained model ``net`` and the ``test_data`` loader (for
    rerankers and studies).
    """
    distributed.setup()  # no-op unless launched by torchrun with several processes
    config = BundleConfig(model, dataset, config_file_list, config_dict, cmd_args)
    config["device"] = distributed.local_device(config["device"])
    if not distributed.is_main():
        config["show_progress"] = False
    init_seed(config["seed"], config["reproducibility"])
    make_output_dirs(config)
    init_logger(config)
    logger = getLogger()
    log_file = file_only_on_screen(logger)
    logger.info(config, extra=FILE_ONLY)  # the full config goes to the log file, not the screen
    if log_file:
        logger.info("%s on %s: full config in %s", config["model"], config["dataset"], log_file)

    from recbole_bundle.ranking import catalogue_metrics, check_catalogue_config

    check_catalogue_config(config)  # bad cut-offs stop the run before training, not after
    data = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, data)

    net = build_model(config, train_data, valid_data)
    logger.info(net, extra=FILE_ONLY)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"], config.model_class)(config, net)
    if config["resume_checkpoint"]:
        trainer.resume_checkpoint(config["resume_checkpoint"])
    keep = saved and config["MODEL_TYPE"] != ModelType.TRADITIONAL
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=keep, show_progress=config["show_progress"]
    )
    keep = keep and os.path.exists(trainer.saved_model_file)  # nothing trained (zero-shot) -> no checkpoint
    test_result = trainer.evaluate(test_data, load_best_model=keep, show_progress=config["show_progress"])
    if config["catalogue_metrics"]:  # CLHE's protocol beside HitRate@1: recall@K / ndcg@K over the catalogue
        test_result = {**dict(test_result), **catalogue_metrics(net, test_data, config, train_data.dataset)}
    logger.info(f"best valid : {dict(best_valid_result or {})}")
    logger.info(f"test result: {dict(test_result)}")
    return {
        "model": config["model"],
        "dataset": config["dataset"],
        "seed": config["seed"],
        "best_valid_score": best_valid_score,
        "best_valid_result": dict(best_valid_result or {}),
        "test_result": dict(test_result),
        "checkpoint": trainer.saved_model_file if keep else None,
        "config": dict(config.final_config_dict),
        "curve": list(getattr(trainer, "curve", [])),
        "net": net,  # the trained model (in memory; for rerankers and studies)
        "test_data": test_data,
    }


def build_model(config, train_data, valid_data=None):
    """Prepare the model's item features (:func:`~recbole_bundle.graph_features.prepare_item_features`:
    feature files, or LightGCN on this run's train graph), then build the model from the config, seeded
    (``seed`` + local rank) and on the config's device. Every entry point builds models this way."""
    prepare_item_features(config, train_data, valid_data)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    return config.model_class(config, train_data.dataset).to(config["device"])


def compare(models: Sequence[str], dataset: str, seeds: Sequence[int] = (2020,), *args: Any, **options: Any) -> dict[str, Any]:
    """Run every model on ``dataset`` for every seed; write md/csv/tex tables and a run log.

    Further arguments are :func:`run_variants`' (``config_file_list``, ``config_dict``, ``cmd_args``,
    ``out_dir``, ``proposed``, ...). Returns ``{"records": [...], "tables": {"md": Path, ...}, "log": Path}``.
    """
    options.setdefault("name", f"{dataset}_comparison")
    return run_variants([(m, m, {}) for m in models], dataset, seeds, *args, **options)


def run_variants(
    variants: Sequence[tuple[str, str, dict]],
    dataset: str,
    seeds: Sequence[int] = (2020,),
    config_file_list: Sequence[str] | None = None,
    config_dict: dict | None = None,
    cmd_args: Sequence[str] | None = None,
    out_dir: str | Path = "results",
    name: str = "comparison",
    proposed: Sequence[str] = (),
    metrics: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run each ``(label, model, config overrides)`` for every seed; tables ``<name>.md/csv/tex``, a JSONL
    run log and one training-curve PNG per trained run (``curves/``, needs matplotlib) in ``out_dir``.

    After every finished run the tables are rebuilt from the run log under its lock, so a killed
    comparison keeps the tables of the runs it finished, and two comparisons writing to one ``out_dir``
    end in one table holding both (:func:`recbole_bundle.tables.log_run_and_write_tables`).
    """
    from recbole_bundle.config import parse_cmd_args
    from recbole_bundle.errors import BundleConfigError
    from recbole_bundle.tables import log_run_and_write_tables

    given, _ = parse_cmd_args(cmd_args or [])
    for key in ("seed", *sorted({k for _, _, o in variants for k in o})):
        if key in given or (key == "seed" and "seed" in (config_dict or {})):
            raise BundleConfigError(
                f"--{key}={given.get(key, (config_dict or {}).get(key))} would override the {'seeds' if key == 'seed' else key} "
                f"this comparison sets for each run ({'--seeds=...' if key == 'seed' else 'its variants'}), so every run "
                f"would silently use the same value; {'pass the seeds as --seeds=1,2,3' if key == 'seed' else 'drop --' + key}"
            )
    labels = [label for label, _, _ in variants]
    unknown = [p for p in proposed if p not in labels]
    if unknown:  # checked before hours of training, not when the table is written
        raise BundleConfigError(f"--proposed {unknown} is not among the models run {labels}; check the spelling")
    out = Path(out_dir)
    log_path = out / f"{dataset}_runs.jsonl"
    records = []
    tables: dict[str, Path] = {}
    for label, model, overrides in variants:
        for seed in seeds:
            result = run_recbole_bundle(model, dataset, config_file_list,
                                        {**(config_dict or {}), **overrides, "seed": int(seed)}, cmd_args)
            record = {"model": label, "seed": int(seed), "metrics": result["test_result"]}
            records.append(record)
            if distributed.is_main():
                protocol = {k: result["config"].get(k) for k in PROTOCOL_KEYS if k not in overrides}
                tables = log_run_and_write_tables(
                    log_path, {**record, "valid": result["best_valid_result"], "curve": result["curve"],
                               "protocol": protocol, "config": result["config"]},
                    out, name, proposed=[p for p in proposed if p in {r["model"] for r in records}] if proposed else (),
                    metrics=metrics)
                if len(result["curve"]) > 1:
                    save_curve(result["curve"], out / "curves" / f"{dataset}_{_slug(label)}_seed{seed}.png",
                                f"{label} on {dataset} (seed {seed})", result["config"]["valid_metric"])
            logging.getLogger(__name__).info("%s seed %s: %s", label, seed, result["test_result"])
    return {"records": records, "tables": tables, "log": log_path}


#: Settings that define the questions a run answers: runs that differ in one of them are not averaged
#: into one table row (keys a study varies on purpose are left out per run).
PROTOCOL_KEYS = ("dataset", "n_candidates", "neg_strategy", "neg_pop_alpha", "hard_neg_pool", "hard_neg_feature",
                 "question_seed", "bundle_split", "bundle_split_ratio", "split_seed", "eval_input_ratio",
                 "valid_max_questions", "test_max_questions", "data_path")

#: ``extra=`` for log records meant for the log file only (the full config, the model's repr).
FILE_ONLY = {"file_only": True}


class _NotOnScreen(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "file_only", False)


def file_only_on_screen(logger: logging.Logger) -> str | None:
    """Keep records logged with ``extra=FILE_ONLY`` off the screen handlers (they still reach the log file);
    returns the log file's path, if there is one."""
    log_file = None
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            log_file = handler.baseFilename
        elif isinstance(handler, logging.StreamHandler) and not any(isinstance(f, _NotOnScreen) for f in handler.filters):
            handler.addFilter(_NotOnScreen())
    return log_file


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label).strip("_")


def save_curve(curve: list[dict], path: Path, title: str, metric: str) -> None:
    """Write a run's validation curve as a PNG (skipped, with a log line, without matplotlib)."""
    try:
        from recbole_bundle.plots import plot_curve
    except ImportError:  # matplotlib is the optional 'plots' extra
        logging.getLogger(__name__).info("matplotlib not installed: no training-curve PNG (pip install matplotlib)")
        return
    plot_curve(curve, path, title=title, metric=metric)
