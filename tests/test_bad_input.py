"""Bad input stops with one clear message naming the file / line / key and the fix, or behaves correctly.

Classes of case: data files, config values, command-line arguments, caches, feature extraction, exit codes.
Every check is fast (tiny data from conftest, or a BundleConfig without data).
"""

import contextlib
import json
import logging
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from recbole_bundle.config import BundleConfig, known_config_keys
from recbole_bundle.errors import BundleConfigError, BundleDataError, BundleError
from recbole_bundle.quick_start import run_recbole_bundle
from recbole_bundle.data.prepare import create_dataset
from tests.conftest import ROOT, tiny_bundles, write_atomic


def cfg(tmp_path, **kw):
    return {"data_path": str(tmp_path), "state": "WARNING", "show_progress": False,
            "checkpoint_dir": str(tmp_path / "saved"), "epochs": 1, **kw}


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""
    def boom(*_):
        raise TimeoutError(f"still running after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# =============================================================================== data files


def test_wrong_column_count_names_file_and_line(tmp_path):
    d = write_atomic(tmp_path, "bad", tiny_bundles(8, 20))
    lines = (d / "bad.inter").read_text().splitlines()
    lines[5] = lines[5] + "\textra"
    (d / "bad.inter").write_text("\n".join(lines) + "\n")
    with pytest.raises(BundleDataError, match=r"bad\.inter, line 6: expected 2 TAB-separated values"):
        run_recbole_bundle("Pop", "bad", config_dict=cfg(tmp_path))


@pytest.mark.parametrize("name, content, message", [
    ("notype", "bundle_id\titem_id\nb1\ti1\n", "line 1: column 'bundle_id' must be 'name:type'"),
    ("nocol", "user_id:token\titem_id:token\nb1\ti1\n", "required column 'bundle_id:token' is missing"),
    ("empty", "", "empty file"),
    ("floatid", "bundle_id:float\titem_id:token\n1\ti1\n", r"column 'bundle_id:float' must be 'bundle_id:token'.*change the header"),
    ("headeronly", "bundle_id:token\titem_id:token\n", r"only a header, no data rows; add one line"),
])
def test_bad_header_names_the_problem(tmp_path, name, content, message):
    d = tmp_path / name
    d.mkdir()
    (d / f"{name}.inter").write_text(content)
    with pytest.raises(BundleDataError, match=rf"{name}\.inter.*{message}"):
        run_recbole_bundle("Pop", name, config_dict=cfg(tmp_path))


def test_not_utf8_names_file_and_fix(tmp_path):
    d = tmp_path / "latin"
    d.mkdir()
    (d / "latin.inter").write_bytes("bundle_id:token\titem_id:token\nb1\tcaf\xe9\n".encode("latin-1"))
    with pytest.raises(BundleDataError, match=r"latin\.inter: not UTF-8 text.*save the file as UTF-8"):
        run_recbole_bundle("Pop", "latin", config_dict=cfg(tmp_path))


def test_utf8_bom_is_accepted_with_the_same_result(tmp_path):
    """A BOM (Windows editors) is skipped, not read as part of the first column name."""
    bundles, titles = tiny_bundles(30, 40), {f"i{x}": f"title {x}" for x in range(40)}
    plain = run_recbole_bundle("Pop", "plain", config_dict=cfg(write_atomic(tmp_path, "plain", bundles, titles).parent))
    d = write_atomic(tmp_path / "b", "bom", bundles, titles)
    for f in (d / "bom.inter", d / "bom.item"):
        f.write_bytes(b"\xef\xbb\xbf" + f.read_bytes())
    bom = run_recbole_bundle("Pop", "bom", config_dict=cfg(tmp_path / "b"))
    assert bom["test_result"] == plain["test_result"]
    ds = create_dataset(BundleConfig("Pop", "bom", config_dict=cfg(tmp_path / "b")))
    assert ds.item_titles()[1].startswith("title")  # the .item header was read too


def test_unknown_dataset_says_where_files_go(tmp_path):
    with pytest.raises(BundleDataError, match=r"no dataset named 'nosuch'.*nosuch\.inter.*bi_train\.txt"):
        run_recbole_bundle("Pop", "nosuch", config_dict=cfg(tmp_path))


def test_official_dataset_offline_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BundleDataError, match="xhLiu/BundleConstruction"):
        run_recbole_bundle("Pop", "spotify", config_dict=cfg(tmp_path))


def test_bundle_with_one_item(tmp_path):
    bundles = tiny_bundles(10, 20)
    bundles["lonely"] = ["i3"]
    write_atomic(tmp_path, "small", bundles)
    with pytest.raises(BundleDataError, match=r"fewer than 2 items \(e\.g\. \['lonely'\]\)"):
        run_recbole_bundle("Pop", "small", config_dict=cfg(tmp_path))


def test_bundle_holding_the_whole_catalogue(tmp_path):
    """No negative exists for it: RecBole's sampler and ours would draw forever."""
    bundles = tiny_bundles(10, 20)
    bundles["all"] = [f"i{x}" for x in range(20)]
    write_atomic(tmp_path, "full", bundles)
    with pytest.raises(BundleDataError, match=r"\['all'\] contain every item of the catalogue.*remove or split"):
        with deadline(60):
            run_recbole_bundle("BPR", "full", config_dict=cfg(tmp_path))


def test_k_larger_than_items_available(tmp_path):
    write_atomic(tmp_path, "few", tiny_bundles(20, 24))
    with pytest.raises(BundleConfigError, match="n_candidates=40 is larger than the items available"):
        run_recbole_bundle("Pop", "few", config_dict=cfg(tmp_path, n_candidates=40))


@pytest.mark.parametrize("model", ["CLHE", "LLMTextLoRA"])
def test_train_bundle_leaving_too_few_negatives_is_an_error_not_a_hang(tmp_path, model):
    """A 58-item train bundle in a 60-item catalogue at K=5 used to spin forever in the negative sampler."""
    bundles = tiny_bundles(40, 60)
    bundles["huge"] = [f"i{x}" for x in range(58)]
    roles = {(b, i): "train" for b, items in bundles.items() for i in items}
    for j, b in enumerate(["b1", "b2", "b3", "b4"]):  # a file split keeps 'huge' in train
        items = bundles[b]
        phase = "valid" if j < 2 else "test"
        roles[(b, items[0])] = f"{phase}_input"
        for i in items[1:]:
            roles[(b, i)] = f"{phase}_gt"
    write_atomic(tmp_path, "hang", bundles, roles=roles)
    extra = {"llm_name_or_path": "unused"} if model == "LLMTextLoRA" else {}
    with deadline(120), pytest.raises(BundleConfigError,
                                      match=r"n_candidates=5 .*train bundle 'huge' has 58, leaving 2 possible negatives.*at most 3, or remove or split"):
        run_recbole_bundle(model, "hang", config_dict=cfg(tmp_path, n_candidates=5, **extra))


def test_bad_split_settings(tmp_path):
    write_atomic(tmp_path, "tiny", tiny_bundles(20, 30))
    with pytest.raises(BundleConfigError, match="bundle_split"):
        run_recbole_bundle("Pop", "tiny", config_dict=cfg(tmp_path, bundle_split="random"))
    with pytest.raises(BundleDataError, match="role:token"):
        run_recbole_bundle("Pop", "tiny", config_dict=cfg(tmp_path, bundle_split="file"))


@pytest.mark.parametrize("ratio, message", [
    ([1.0, 0.0, 0.0], r"leaves no valid bundles: valid and test shares must be > 0"),
    ([0.9, 0.1, 0.0], r"leaves no test bundles"),
])
def test_split_without_valid_or_test_bundles_is_refused(tmp_path, ratio, message):
    """[1, 0, 0] used to exit 0 with no metrics."""
    write_atomic(tmp_path, "tiny", tiny_bundles(20, 30))
    with pytest.raises(BundleConfigError, match=message):
        run_recbole_bundle("Pop", "tiny", config_dict=cfg(tmp_path, bundle_split_ratio=ratio))


def test_split_share_rounding_to_zero_bundles_is_named(tmp_path):
    write_atomic(tmp_path, "five", tiny_bundles(5, 12, size=3))
    with pytest.raises(BundleDataError, match=r"no valid bundles .*rounds to 0 of the 5 bundles; raise the valid share"):
        run_recbole_bundle("Pop", "five", config_dict=cfg(tmp_path, bundle_split_ratio=[0.8, 0.05, 0.15]))


def test_corrupt_feature_file_is_one_message(data_root):
    (data_root / "sample" / "sample.feat_visual.npz").write_bytes(b"PK\x03\x04 not really a zip")
    ds = create_dataset(BundleConfig("Pop", "sample", config_dict={"data_path": str(data_root), "state": "WARNING"}))
    with pytest.raises(BundleDataError, match=r"sample\.feat_visual\.npz: not a readable feature file.*Extract it again"):
        ds.item_features("visual")


def test_changed_raw_files_rebuild_the_atomic_files(tmp_path, caplog):
    """A rerun after fixing the titles JSON used to reuse the stale .item file."""
    raw = tmp_path / "raw"
    raw.mkdir()
    bundles = tiny_bundles(20, 30)
    (raw / "pairs.tsv").write_text("".join(f"{b}\t{i}\n" for b, items in bundles.items() for i in items))
    (raw / "titles.json").write_text(json.dumps({f"i{x}": "wrong title" for x in range(30)}))
    conf = {"data_path": str(tmp_path), "state": "WARNING", "raw_format": "pairs", "raw_data_path": str(raw),
            "raw_pairs_file": "pairs.tsv", "raw_titles_file": "titles.json"}
    assert create_dataset(BundleConfig("Pop", "pp", config_dict=conf)).item_titles()[1] == "wrong title"
    assert json.loads((tmp_path / "pp" / "pp.source.json").read_text())["files"] == ["pp.inter", "pp.item"]
    time.sleep(0.01)
    (raw / "titles.json").write_text(json.dumps({f"i{x}": "fixed title" for x in range(30)}))
    with caplog.at_level(logging.WARNING):
        ds = create_dataset(BundleConfig("Pop", "pp", config_dict=conf))
    assert ds.item_titles()[1] == "fixed title"
    assert re.search(r"titles\.json changed since .*pp\.inter was converted from it; rebuilding", caplog.text)
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # unchanged raw files: reused, no rebuild
        create_dataset(BundleConfig("Pop", "pp", config_dict=conf))
    assert "rebuilding" not in caplog.text


def test_hand_written_atomic_files_are_used_as_they_are(tmp_path):
    """No sidecar = atomic files given by the user: never overwritten from raw files."""
    write_atomic(tmp_path, "own", tiny_bundles(20, 30), titles={f"i{x}": "mine" for x in range(30)})
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "pairs.tsv").write_text("b1\ti1\nb1\ti2\n")
    conf = {"data_path": str(tmp_path), "state": "WARNING", "raw_format": "pairs", "raw_data_path": str(raw)}
    ds = create_dataset(BundleConfig("Pop", "own", config_dict=conf))
    assert ds.item_titles()[1] == "mine" and ds.user_num - 1 == 20


# =============================================================================== config values


@pytest.mark.parametrize("args, message", [
    (["--n_candidate=5"], r"unknown config key --n_candidate \(from command line\)\. Did you mean 'n_candidates'\?.*fix the spelling"),
    (["--question_seed=1.5"], r"'question_seed' \(from command line\) must be int.*got float 1\.5"),
    (["--split_seed=abc"], r"'split_seed' \(from command line\) must be int.*got str 'abc'"),
    (["--seed=1.5"], r"'seed' \(from command line\) must be int"),
    (["--eval_input_ratio=0"], r"'eval_input_ratio' \(from command line\) = 0 must lie strictly between 0 and 1"),
    (["--eval_input_ratio=1.5"], r"'eval_input_ratio' \(from command line\) = 1\.5 must lie strictly between 0 and 1"),
    (["--eval_input_ratio=-1"], r"'eval_input_ratio' \(from command line\) = -1 must lie strictly between 0 and 1"),
    (["--bundle_split_ratio=[.5,.5,.5]"], r"'bundle_split_ratio' \(from command line\) = \[0\.5, 0\.5, 0\.5\] sums to 1\.5, not 1"),
    (["--bundle_split_ratio=[0.8,0.2]"], r"'bundle_split_ratio'.*must be 3 non-negative numbers"),
    (["--n_candidates=1"], r"'n_candidates' \(from command line\) = 1 must be an integer >= 2"),
    (["--epochs=0"], r"'epochs' \(from command line\) = 0 must be >= 1 for BPR.*untrained model"),
    (["--metrics=[Recall@10]"], r"'metrics' \(from command line\): 'Recall@10' is not a multiple-choice metric; supported: \['HitRate@1'"),
    (["--valid_metric=NDCG@10"], r"'valid_metric' \(from command line\) = 'NDCG@10' must be one of the metrics"),
    (["--valid_metric=HitRate@1(valid)", "--metrics=[HitRate@1]"], r"'valid_metric'.*must be one of the metrics \['HitRate@1'\]"),
    (["--device=tpu"], r"'device' \(from command line\) = 'tpu' is not a torch device; use cpu, cuda"),
    (["--seed", "7"], r"not --key=value; write each config key as --key=value \(e\.g\. --seed=7"),
])
def test_bad_config_values_name_key_source_and_fix(args, message):
    with pytest.raises(BundleConfigError, match=message):
        BundleConfig("BPR", "sample", cmd_args=args)


def test_unknown_key_from_config_dict_and_file_names_the_source(tmp_path):
    with pytest.raises(BundleConfigError, match=r"unknown config key 'neg_stratgy' \(from config_dict\)\. Did you mean 'neg_strategy'"):
        BundleConfig("Pop", "sample", config_dict={"neg_stratgy": "hard"})
    y = tmp_path / "mine.yaml"
    y.write_text("n_candidates: 5\ntrain_max_item: 4\n")
    with pytest.raises(BundleConfigError, match=r"unknown config key 'train_max_item' \(from config file '.*mine\.yaml', line 2\)\. "
                                                r"Did you mean 'train_max_items'"):
        BundleConfig("Pop", "sample", config_file_list=[str(y)])
    y.write_text("- a list\n- not a mapping\n")
    with pytest.raises(BundleConfigError, match=r"mine\.yaml' must hold 'key: value' lines"):
        BundleConfig("Pop", "sample", config_file_list=[str(y)])


def test_legitimate_recbole_and_plugin_keys_are_accepted():
    keys = ["--nproc=1", "--gpu_id=0", "--use_gpu=False", "--checkpoint_dir=x.pth.d", "--state=WARNING",
            "--reproducibility=True", "--data_path=somewhere", "--worker=0", "--metric_decimal_place=4",
            "--encoding=utf-8", "--learning_rate=0.01", "--embedding_size=32", "--train_neg_sample_args=None",
            "--metrics=HitRate@1", "--valid_metric=hitrate@1", "--split_seed=3", "--question_seed=4"]
    c = BundleConfig("BPR", "sample", cmd_args=keys)
    assert c["gpu_id"] == "0" and c["nproc"] == 1 and c["checkpoint_dir"] == "x.pth.d" and c["split_seed"] == 3
    assert c["metrics"] == ["HitRate@1"] and c["device"] == torch.device("cpu")
    assert BundleConfig("LLMZeroShot", "sample", cmd_args=["--epochs=0"])["epochs"] == 0  # zero-shot: no epochs


def test_every_key_the_code_and_shipped_configs_use_is_known():
    """The unknown-key check must never reject a key this project itself reads or ships."""
    import yaml

    known = known_config_keys()
    used = set()
    for f in (ROOT / "recbole_bundle").rglob("*.py"):
        used |= set(re.findall(r"""(?<![\w.])(?:config|cfg|lcfg|self\.config)\[["']([A-Za-z_]+)["']\]""", f.read_text()))
    used.discard("config")  # checkpoint["config"] / result["config"]: a saved config, not a key
    for f in (ROOT / "configs").glob("*.yaml"):
        used |= set(yaml.safe_load(f.read_text()))
    assert used and not used - set(known), sorted(used - set(known))


def test_cuda_device_without_cuda_is_an_error_and_use_gpu_false_is_honoured(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BundleConfigError, match=r"'device' \(from command line\) = 'cuda' asks for a GPU but "
                                                r"torch\.cuda\.is_available\(\) is False.*--device=cpu"):
        BundleConfig("Pop", "sample", cmd_args=["--device=cuda"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # RecBole would pick cuda; use_gpu: False keeps cpu
    assert BundleConfig("Pop", "sample", cmd_args=["--use_gpu=False"])["device"] == torch.device("cpu")
    assert BundleConfig("Pop", "sample", cmd_args=["--device=cpu"])["device"] == torch.device("cpu")


def test_command_line_values_never_run_code(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(BundleConfigError, match=r"'n_candidates' \(from command line\) must be int"):
        BundleConfig("Pop", "sample", cmd_args=[f"--n_candidates=open({str(marker)!r}, 'w').close() or 5"])
    assert not marker.exists()


@pytest.mark.parametrize("model, message", [
    ("LightGNC", r"unknown model 'LightGNC'.*Did you mean 'LightGCN'"),
    ("itemknn", r"unknown model 'itemknn' \(model names are case-sensitive\)\. Did you mean 'ItemKNN'"),
    ("SASRec", r"'SASRec' is a RecBole sequential model.*runs its own models \(.*CLHE.*\) and RecBole's general"),
    ("FM", r"'FM' is a RecBole context model, which needs context features"),
])
def test_unknown_or_unsupported_model(model, message):
    with pytest.raises(BundleConfigError, match=message):
        BundleConfig(model, "sample")


@pytest.mark.parametrize("name", ["../good", "data/good", "~/good", ".."])
def test_path_like_dataset_names_are_refused_with_the_fix(name):
    with pytest.raises(BundleConfigError, match=r"is a path, but a dataset is a folder NAME under data_path.*--data_path="):
        BundleConfig("Pop", name)


def test_wrong_type_from_command_line_and_yaml(tmp_path):
    with pytest.raises(BundleConfigError, match="config key 'n_candidates' \\(from command line\\) must be int"):
        BundleConfig("Pop", "sample", cmd_args=["--n_candidates=ten"])
    y = tmp_path / "bad.yaml"
    y.write_text("eval_batch_size: [1, 2]\n")
    with pytest.raises(BundleConfigError, match="config key 'eval_batch_size' \\(from config files\\) must be int"):
        BundleConfig("Pop", "sample", config_file_list=[str(y)])
    with pytest.raises(BundleConfigError, match="config file '.*missing.yaml' does not exist"):
        BundleConfig("Pop", "sample", config_file_list=[str(tmp_path / "missing.yaml")])


# =============================================================================== caches


def _questions(data_root):
    from recbole_bundle.data.dataset import BundleDataset
    from recbole_bundle.data.prepare import eval_questions

    config = BundleConfig("Pop", "sample", config_dict={"data_path": str(data_root), "state": "WARNING"})
    ds = BundleDataset(config)
    train, valid, test = ds.build()
    return eval_questions(config, ds, train, test, "test")


def test_corrupt_question_cache_is_rebuilt_with_a_warning(data_root, caplog):
    import shutil

    shutil.rmtree(data_root / "sample" / "questions", ignore_errors=True)  # caches of manual runs in the copy
    first = _questions(data_root)
    (cache,) = (data_root / "sample" / "questions").glob("test_*.npz")
    cache.write_bytes(cache.read_bytes()[:100])  # a torn copy
    with caplog.at_level(logging.WARNING):
        again = _questions(data_root)
    assert re.search(r"question cache .*test_.*\.npz is unreadable .*; rebuilding it", caplog.text)
    assert np.array_equal(again.candidates, first.candidates) and np.array_equal(again.label, first.label)
    with np.load(cache) as z:  # and the rebuilt file is whole again
        assert np.array_equal(z["candidates"], first.candidates)


def test_corrupt_relational_cache_is_rebuilt_with_a_warning(tmp_path, caplog):
    from recbole_bundle.graph_features import lightgcn_item_features

    write_atomic(tmp_path, "rel", tiny_bundles(24, 30))
    config = BundleConfig("CLHE", "rel", config_dict=cfg(tmp_path))
    train = create_dataset(config).build()[0]
    first = lightgcn_item_features(config, train, epochs=1, dim=8)
    (cache,) = (tmp_path / "rel" / "cache").glob("relational_lightgcn_*.npz")
    cache.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING):
        again = lightgcn_item_features(config, train, epochs=1, dim=8)
    assert re.search(r"relational feature cache .* is unreadable .*; rebuilding it", caplog.text)
    assert again.shape == first.shape and np.allclose(again, first)


def test_question_cache_key_follows_the_train_graph_for_popularity_negatives(data_root):
    from recbole_bundle.data.dataset import BundleDataset
    from recbole_bundle.data.questions import negatives_source_key

    base = {"data_path": str(data_root), "state": "WARNING"}
    keys = {}
    for strategy in ("uniform", "popularity"):
        for seed in (1, 2):  # another split seed = another train graph
            config = BundleConfig("Pop", "sample", config_dict={**base, "neg_strategy": strategy, "split_seed": seed})
            ds = BundleDataset(config)
            keys[strategy, seed] = negatives_source_key(config, ds, ds.build()[0])
    assert keys["uniform", 1] == keys["uniform", 2] == []  # uniform negatives do not depend on it
    assert keys["popularity", 1] != keys["popularity", 2]


def test_last_checkpoint_path_changes_the_file_name_only():
    """checkpoint_dir=x.pth.d used to send <run>.last.pth into another folder (str.replace on the path)."""
    from recbole_bundle.trainer.bundle_mllm_trainer import _last_path

    assert _last_path("x.pth.d/BundleMLLM-sample.pth") == str(Path("x.pth.d/BundleMLLM-sample.last.pth"))


# =============================================================================== command lines and exit codes


def _cli_main():
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_recbole_bundle_cli", ROOT / "run_recbole_bundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.parametrize("argv, message", [
    (["--model=Pop", "--seed=7", "--seeds=1,2"], r"--seed=7 would override the seeds .*pass the seeds as --seeds=1,2,3"),
    (["--model=Pop", "--seeds=abc"], r"--seeds='abc' must be comma-separated integers"),
    (["--model=Pop,BPR", "--proposed=BRP"], r"--proposed \['BRP'\] is not among the models run"),
    (["--model=Pop", "--n_candidate=5"], r"unknown config key --n_candidate"),
    (["--model="], r"--model is empty"),
])
def test_main_cli_errors_exit_2_with_one_message(argv, message, capsys, tmp_path):
    assert _cli_main()([*argv, f"--out_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err


def test_seed_is_not_an_abbreviation_of_seeds(tmp_path, capsys):
    """argparse used to take --seed=7 as --seeds=7 (a comparison table instead of a single run)."""
    assert _cli_main()(["--model=Pop", "--seed=abc", f"--out_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "'seed' (from command line) must be int" in err and "--seeds" not in err


def test_cli_reports_error_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "run_recbole_bundle.py"), "--model=Nope", "--dataset=sample"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert "error: unknown model 'Nope'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("module, args, message", [
    ("recbole_bundle.studies", ["--study=k", "--seeds=abc"], r"error: --seeds='abc' must be comma-separated integers"),
    ("recbole_bundle.data.sample", ["--out=x", "--n-item=5"], r"unrecognized arguments: --n-item=5"),
])
def test_every_cli_exits_2_on_bad_input(tmp_path, module, args, message):
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert re.search(message, proc.stderr) and "Traceback" not in proc.stderr


# =============================================================================== feature extraction


def test_features_cli_empty_media_folder_is_an_error_exit_2(tmp_path, data_root):
    """It used to write a 0-dim feature file and exit 0."""
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "not_an_item.png").write_bytes(b"x")
    proc = subprocess.run([sys.executable, "-m", "recbole_bundle.features", "--dataset=sample", "--modality=visual",
                           f"--images={tmp_path / 'imgs'}", f"--data_path={data_root}", "--state=WARNING"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert re.search(r"error: --images=.*imgs holds no media file of a sample item: found 1 file\(s\).*\(e\.g\. not_an_item\).*"
                     r"named <item token>\.<ext>", proc.stderr)
    assert not list((data_root / "sample").glob("sample.feat_visual.partial")) and "Traceback" not in proc.stderr


def test_features_cli_device_checks(monkeypatch):
    from recbole_bundle.features.__main__ import check_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BundleConfigError, match=r"--device=cuda asks for a GPU but torch\.cuda\.is_available\(\) is False.*--device=cpu"):
        check_device("cuda")
    with pytest.raises(BundleConfigError, match=r"--device='gpu0' is not a torch device"):
        check_device("gpu0")
    check_device("cpu")


def test_all_errors_are_bundle_errors():
    """The CLIs turn BundleError into exit 2; both subclasses must be BundleErrors."""
    assert issubclass(BundleConfigError, BundleError) and issubclass(BundleDataError, BundleError)
