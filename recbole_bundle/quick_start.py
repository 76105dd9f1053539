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
from recbole_bundle.utils import create_dataset, data_preparation, get_trainer


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
    ``test_result`` (e.g. ``{'hitrate@1': 0.41, 'validratio': 1.0, 'hitrate@1(valid)': 0.41}``),
    ``checkpoint`` and the final ``config`` as a plain dict.
    """
    distributed.setup()  # no-op unless launched by torchrun with several processes
    config = BundleConfig(model, dataset, config_file_list, config_dict, cmd_args)
    config["device"] = distributed.local_device(config["device"])
    if not distributed.is_main():
        config["show_progress"] = False
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(config)

    data = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, data)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    net = config.model_class(config, train_data.dataset).to(config["device"])
    logger.info(net)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"], config.model_class)(config, net)
    if config["resume_checkpoint"]:
        trainer.resume_checkpoint(config["resume_checkpoint"])
    keep = saved and config["MODEL_TYPE"] != ModelType.TRADITIONAL
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=keep, show_progress=config["show_progress"]
    )
    keep = keep and os.path.exists(trainer.saved_model_file)  # nothing trained (zero-shot) -> no checkpoint
    test_result = trainer.evaluate(test_data, load_best_model=keep, show_progress=config["show_progress"])
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
    }


def compare(
    models: Sequence[str],
    dataset: str,
    seeds: Sequence[int] = (2020,),
    config_file_list: Sequence[str] | None = None,
    config_dict: dict | None = None,
    cmd_args: Sequence[str] | None = None,
    out_dir: str | Path = "results",
    proposed: Sequence[str] = (),
) -> dict[str, Any]:
    """Run every model on ``dataset`` for every seed; write md/csv/tex tables and a run log.

    Returns ``{"records": [...], "tables": {"md": Path, "csv": Path, "tex": Path}, "log": Path}``.
    """
    from recbole_bundle.tables import append_run_log, write_tables

    out = Path(out_dir)
    log_path = out / f"{dataset}_runs.jsonl"
    records = []
    for name in models:
        for seed in seeds:
            result = run_recbole_bundle(name, dataset, config_file_list, {**(config_dict or {}), "seed": int(seed)},
                                        cmd_args)
            record = {"model": result["model"], "seed": int(seed), "metrics": result["test_result"]}
            records.append(record)
            append_run_log(log_path, {**record, "valid": result["best_valid_result"], "config": result["config"]})
            logging.getLogger(__name__).info("%s seed %s: %s", name, seed, result["test_result"])
    tables = write_tables(records, out, name=f"{dataset}_comparison", proposed=proposed)
    return {"records": records, "tables": tables, "log": log_path}
