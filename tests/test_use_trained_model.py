"""Use a trained model: load any saved run, export/import Bundle-MLLM like Hugging Face, complete a partial
bundle from the whole catalogue, and evaluate a saved run on the test questions without training."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import recbole_bundle
from recbole_bundle.complete import (catalogue, catalogue_scores, complete_bundle, load_retriever, partial_interaction,
                                     resolve_items, retrieve)
from recbole_bundle.complete import main as complete_main
from recbole_bundle.errors import BundleConfigError, BundleDataError
from recbole_bundle.inference import config_overrides, evaluate_saved, saved_config
from recbole_bundle.model.base import score_candidates
from recbole_bundle.quick_start import run_recbole_bundle
from tests.conftest import SAMPLE_DIR

from run_recbole_bundle import main as cli_main


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """One data folder + checkpoint folder shared by the module's trained runs."""
    r = tmp_path_factory.mktemp("use_trained")
    shutil.copytree(SAMPLE_DIR, r / "data" / "sample", ignore=shutil.ignore_patterns("cache"))
    return r


def _train(root: Path, model: str, **extra) -> dict:
    cfg = {"data_path": str(root / "data"), "checkpoint_dir": str(root / "saved"), "show_progress": False,
           "state": "WARNING", "epochs": 1, "train_batch_size": 512, **extra}
    with contextlib.chdir(root):  # RecBole writes log/ into the working directory
        return run_recbole_bundle(model, "sample", config_dict=cfg)


@pytest.fixture(scope="module")
def lightgcn(root) -> dict:
    return _train(root, "LightGCN")


@pytest.fixture(scope="module")
def lightgcn_run(lightgcn):
    return recbole_bundle.load(lightgcn["checkpoint"])


@pytest.fixture(scope="module")
def mllm(root, tmp_path_factory) -> dict:
    from recbole_bundle.testing import tiny_llama

    tiny = str(tiny_llama(tmp_path_factory.mktemp("tiny") / "llama"))
    return _train(root, "BundleMLLM", llm_name_or_path=tiny, train_questions_per_epoch=16, valid_max_questions=16,
                  test_max_questions=24, relational_epochs=1, n_candidates=4, eval_batch_size=16, scoring="letter",
                  stages=["s1", "s2"])


def _scores(net, loader, n_batches: int = 2) -> list[torch.Tensor]:
    net.eval()
    with torch.no_grad():
        return [score_candidates(net, b).detach().cpu() for _, b in zip(range(n_batches), loader)]


def _assert_same_scores(a, b) -> None:
    assert len(a) == len(b) and a
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


# --------------------------------------------------------------------------- load: every model


def test_recbole_model_checkpoint_loads_with_identical_scores(lightgcn, lightgcn_run):
    run = lightgcn_run
    assert isinstance(run, recbole_bundle.LoadedRun) and not run.model.training
    assert run.config["model"] == "LightGCN" and run.config["epochs"] == 1 and run.config["train_batch_size"] == 512
    assert run.config["data_path"] == lightgcn["config"]["data_path"]  # not joined with the dataset name twice
    qs_old, qs_new = lightgcn["test_data"].questions, run.test_data.questions
    assert np.array_equal(qs_old.candidates, qs_new.candidates) and np.array_equal(qs_old.partial, qs_new.partial)
    _assert_same_scores(_scores(lightgcn["net"], lightgcn["test_data"]), _scores(run.model, run.test_data))


def test_config_round_trip_passes_back_only_user_keys(lightgcn):
    saved = saved_config(lightgcn["checkpoint"])
    back = config_overrides(saved)
    assert saved["data_path"].endswith("sample") and back["data_path"] == str(Path(saved["data_path"]).parent)
    assert back["epochs"] == 1 and back["train_batch_size"] == 512
    for derived in ("device", "MODEL_TYPE", "MODEL_INPUT_TYPE", "eval_type", "local_rank", "checkpoint_dir", "encoding"):
        assert derived not in back
    assert "learning_rate" not in back  # equal to the default: not passed


def test_load_with_another_data_path(lightgcn, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(Path(lightgcn["config"]["data_path"]), moved / "sample", ignore=shutil.ignore_patterns("cache", "questions"))
    run = recbole_bundle.load(lightgcn["checkpoint"], data_path=str(moved))
    assert Path(run.config["data_path"]) == moved / "sample"
    _assert_same_scores(_scores(lightgcn["net"], lightgcn["test_data"]), _scores(run.model, run.test_data))


def test_overriding_an_identity_key_is_refused(lightgcn):
    with pytest.raises(BundleConfigError, match="n_candidates"):
        recbole_bundle.load(lightgcn["checkpoint"], n_candidates=5)


def test_clhe_checkpoint_loads_with_identical_scores(root):
    result = _train(root, "CLHE", relational_epochs=1)
    run = recbole_bundle.load(result["checkpoint"])
    _assert_same_scores(_scores(result["net"], result["test_data"]), _scores(run.model, run.test_data))
    batch = next(iter(run.test_data))
    with torch.no_grad():
        torch.testing.assert_close(result["net"].eval().full_sort_scores(batch), run.model.full_sort_scores(batch),
                                   rtol=0, atol=0)


def test_one_pass_model_is_refitted_from_its_checkpoint(root, tmp_path):
    """Pop / ItemKNN are fitted in one pass over the train split: their checkpoint's run is fitted again."""
    from recbole_bundle.config import BundleConfig
    from recbole_bundle.io import atomic_torch_save
    from recbole_bundle.trainer.checkpoint import FORMAT, config_json

    result = _train(root, "Pop")  # the pipeline keeps no checkpoint of one-pass models: write one like a trainer would
    config = BundleConfig("Pop", "sample", config_dict={"data_path": str(root / "data"), "epochs": 1, "state": "WARNING",
                                                        "show_progress": False, "train_batch_size": 512})
    path = tmp_path / "pop.pth"
    atomic_torch_save({"format": FORMAT, "config_json": config_json(config), "state_dict": {}}, path)
    run = recbole_bundle.load(path)
    assert int(run.model.item_cnt.sum()) > 0  # fitted again (counts of the train split)
    _assert_same_scores(_scores(result["net"], result["test_data"]), _scores(run.model, run.test_data))


# --------------------------------------------------------------------------- Bundle-MLLM: checkpoint and save_pretrained


def test_bundle_mllm_checkpoint_and_export_load_with_identical_scores(mllm, tmp_path):
    from safetensors.torch import load_file

    from recbole_bundle.model import BundleMLLM

    reference = _scores(mllm["net"], mllm["test_data"])
    run = recbole_bundle.load(mllm["checkpoint"])
    assert run.model.stage == "s2" and not run.model.training
    _assert_same_scores(reference, _scores(run.model, run.test_data))

    out = mllm["net"].save_pretrained(tmp_path / "export", config=mllm, metrics=mllm["test_result"])
    names = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert {"adapter/adapter_config.json", "adapter/adapter_model.safetensors", "fusion.safetensors", "config.json",
            "README.md", "recbole_bundle.json"} <= names
    assert not any(n.endswith((".pt", ".bin", ".pth")) for n in names)
    fusion = load_file(str(out / "fusion.safetensors"))
    assert fusion and all(k.startswith(("fusion.", "projector.", "separator")) for k in fusion)
    adapter = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert adapter and all("lora_" in k for k in adapter)  # never the base LLM
    assert json.loads((out / "config.json").read_text())["llm_name_or_path"] == mllm["config"]["llm_name_or_path"]
    card = (out / "README.md").read_text()
    assert "python run_recbole_bundle.py --model=BundleMLLM --dataset=sample" in card and "--n_candidates=4" in card
    assert f"{mllm['test_result']['hitrate@1']:.4f}" in card and "| scoring | letter |" in card

    model = BundleMLLM.from_pretrained(out)
    assert model.stage == "s2" and not model.training
    _assert_same_scores(reference, _scores(model, mllm["test_data"]))
    loaded = recbole_bundle.load(out)
    _assert_same_scores(reference, _scores(loaded.model, loaded.test_data))
    # a second export of the reloaded model needs no config (it remembers it) and replaces the first
    loaded.model.save_pretrained(out)
    assert (out / "recbole_bundle.json").is_file()


def test_save_pretrained_refuses_without_config_and_over_foreign_folders(mllm, tmp_path):
    with pytest.raises(BundleConfigError, match="needs the run's config"):
        mllm["net"].save_pretrained(tmp_path / "x")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(BundleConfigError, match="not an earlier export"):
        mllm["net"].save_pretrained(foreign, config=mllm)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_export_with_a_damaged_fusion_file_is_one_message(mllm, tmp_path):
    out = mllm["net"].save_pretrained(tmp_path / "export", config=mllm)
    (out / "fusion.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(BundleDataError, match="fusion.safetensors"):
        recbole_bundle.load(out)


def test_model_file_reports_catalogue_metrics_of_the_trained_model(lightgcn, capsys):
    """``--model_file`` with ``--catalogue_metrics``: recall@K / ndcg@K over the catalogue, equal to those of the
    model the training run left in memory (same weights, same test bundles)."""
    from recbole_bundle.ranking import catalogue_metrics

    assert cli_main([f"--model_file={lightgcn['checkpoint']}", "--catalogue_metrics=[5,10]"]) == 0
    printed = capsys.readouterr().out
    run = recbole_bundle.load(lightgcn["checkpoint"], catalogue_metrics=[5, 10])
    expected = catalogue_metrics(lightgcn["net"], lightgcn["test_data"], run.config, run.train_data.dataset)
    assert set(expected) == {"recall@5", "recall@10", "ndcg@5", "ndcg@10"}
    for key, value in {**expected, "hitrate@1": lightgcn["test_result"]["hitrate@1"]}.items():
        assert f"{key}: {value}\n" in printed


def test_model_file_reproduces_bundle_mllm_test_result(mllm, tmp_path, capsys):
    assert cli_main([f"--model_file={mllm['checkpoint']}"]) == 0
    printed = capsys.readouterr().out
    for key, value in mllm["test_result"].items():
        assert f"{key}: {value}\n" in printed
    out = mllm["net"].save_pretrained(tmp_path / "export", config=mllm)
    assert evaluate_saved(out)["test_result"] == mllm["test_result"]


def test_reranking_bundle_mllm_plays_the_tournament(mllm):
    """A letter-scoring reranker with a shortlist beyond one prompt (K=4 per prompt, 6 candidates)."""
    run = recbole_bundle.load(mllm["checkpoint"])
    knn = load_retriever(None, run)
    partial = [1, 2, 3]
    shortlist, _ = retrieve(knn, partial_interaction(partial, run.dataset.uid_field), 6, fold_in=True)
    out = complete_bundle(run, [catalogue(run.dataset)[0][i] for i in partial], top_n=6, pool=6)
    tokens = catalogue(run.dataset)[0]
    assert sorted(c.item for c in out) == sorted(tokens[i] for i in shortlist[0])
    scores = [c.score for c in out]
    assert scores == sorted(scores, reverse=True)
    # groups of 4 and 2 in round 0; their two winners meet in round 1 (score = round * 1e4 + log-probability)
    assert sum(s > 5e3 for s in scores) == 2


# --------------------------------------------------------------------------- test-only runs


def test_model_file_reproduces_the_test_hitrate(lightgcn, capsys):
    assert cli_main([f"--model_file={lightgcn['checkpoint']}"]) == 0
    printed = capsys.readouterr().out
    for key, value in lightgcn["test_result"].items():
        assert f"{key}: {value}\n" in printed


def test_official_release_checkpoint_gets_a_clear_message(tmp_path, capsys):
    folder = tmp_path / "checkpoint-400"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "meta-llama/Llama-2-7b-hf", "r": 8}))
    for name in ("adapter_model.bin", "fusion.bin", "projector_model_fuse.bin"):
        (folder / name).write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(BundleConfigError) as err:
        recbole_bundle.load(folder)
    msg = str(err.value)
    assert "official Bundle-MLLM" in msg and "Not supported" in msg and "Supported" in msg and "Llama-2-7b-hf" in msg
    assert cli_main([f"--model_file={folder}"]) == 2
    assert "official Bundle-MLLM" in capsys.readouterr().err


def test_model_file_that_is_not_a_saved_run(tmp_path, capsys):
    assert cli_main([f"--model_file={tmp_path / 'nothing.pth'}"]) == 2
    assert "no such saved run" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleDataError, match="save_pretrained"):
        recbole_bundle.load(tmp_path / "empty")


# --------------------------------------------------------------------------- complete a partial bundle


class FixedScorer(torch.nn.Module):
    """A multiple-choice model whose candidate scores are a fixed number per item."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table

    def score_candidates(self, interaction) -> torch.Tensor:
        return self.table[interaction["candidates"]]


class FixedRetriever(torch.nn.Module):
    """A catalogue scorer with a fixed score per item."""

    ranks_catalogue = True  # the declared hook (BundleChoiceModel.ranks_catalogue)

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table

    def full_sort_scores(self, interaction) -> torch.Tensor:
        return self.table.expand(len(interaction["partial"]), -1).clone()


def test_reranking_is_exactly_the_scorers_order(lightgcn_run):
    ds = lightgcn_run.dataset
    n = ds.item_num
    gen = torch.Generator().manual_seed(0)
    retriever_scores, reranker_scores = torch.rand(n, generator=gen), torch.rand(n, generator=gen)
    tokens, titles = catalogue(ds)
    partial = [int(i) for i in retriever_scores[1:].argsort(descending=True)[:3] + 1]  # the retriever's favourites
    out = complete_bundle(FixedScorer(reranker_scores), [tokens[i] for i in partial], top_n=5, pool=20,
                          retriever=FixedRetriever(retriever_scores), dataset=ds)
    masked = retriever_scores.clone()
    masked[0] = -1
    masked[partial] = -1
    shortlist = masked.argsort(descending=True)[:20]
    expected = shortlist[reranker_scores[shortlist].argsort(descending=True)][:5]
    assert [c.item for c in out] == [tokens[i] for i in expected]
    assert [c.score for c in out] == pytest.approx(reranker_scores[expected].tolist())
    assert [c.title for c in out] == [titles[i] for i in expected]
    assert not {tokens[i] for i in partial} & {c.item for c in out}


@pytest.mark.parametrize("which", ["saved run", "Pop"])
def test_retriever_from_a_saved_run_or_a_name(lightgcn, lightgcn_run, which):
    """The reranker's shortlist is the retriever's top `pool` outside the partial bundle."""
    run = lightgcn_run
    spec = lightgcn["checkpoint"] if which == "saved run" else "Pop"
    ret = load_retriever(spec, run)
    assert type(ret).__name__ == ("LightGCN" if which == "saved run" else "Pop") and not ret.training
    tokens, _ = catalogue(run.dataset)
    partial = [4, 9]
    shortlist, _ = retrieve(ret, partial_interaction(partial, run.dataset.uid_field), 12, fold_in=True)
    table = torch.arange(run.dataset.item_num, dtype=torch.float)  # the reranker prefers higher ids
    out = complete_bundle(FixedScorer(table), [tokens[i] for i in partial], top_n=12, retriever=spec,
                          dataset=run.dataset, config=run.config, train_dataset=run.train_data.dataset)
    assert [c.item for c in out] == [tokens[i] for i in sorted(shortlist[0].tolist(), reverse=True)]


def test_default_retriever_is_itemknn_with_exact_fold_in(lightgcn_run):
    """ItemKNN scores a new partial bundle exactly as it scores a bundle whose history is those items."""
    run = lightgcn_run
    knn = load_retriever(None, run)
    assert type(knn).__name__ == "ItemKNN"
    batch = next(iter(run.test_data))
    folded = catalogue_scores(knn, batch, fold_in=True).numpy()
    own = knn.pred_mat[batch[run.dataset.uid_field].numpy()].toarray() + knn.tiebreak
    np.testing.assert_allclose(folded, own, rtol=1e-6, atol=1e-9)


def test_full_catalogue_model_ranks_outside_the_partial_bundle_in_score_order(lightgcn_run):
    tokens, _ = catalogue(lightgcn_run.dataset)
    partial = ["i001", "i002", "i003"]
    out = complete_bundle(lightgcn_run, partial, top_n=10)
    assert len(out) == 10 and not set(partial) & {c.item for c in out}
    assert len({c.item for c in out}) == 10 and "[PAD]" not in {c.item for c in out}
    scores = [c.score for c in out]
    assert scores == sorted(scores, reverse=True)
    ids = resolve_items(lightgcn_run.dataset, partial)
    all_scores = catalogue_scores(lightgcn_run.model, partial_interaction(ids, "bundle_id"), fold_in=True)[0]
    outside = [i for i in range(1, len(tokens)) if i not in ids]
    assert scores[0] == pytest.approx(float(all_scores[outside].max()))


def test_items_by_title_and_unknown_items_get_close_matches(lightgcn_run):
    ds = lightgcn_run.dataset
    tokens, titles = catalogue(ds)
    a = _unique_title(titles)
    assert resolve_items(ds, [titles[a].upper(), tokens[7], tokens[7]]) == [a, 7]
    with pytest.raises(BundleConfigError) as err:
        resolve_items(ds, [titles[a][:-1] + "x", "i00l"])
    msg = str(err.value)
    assert repr(tokens[a]) in msg and "'i001'" in msg and "close matches" in msg
    dup = next(t for t in set(titles[1:]) if titles.count(t) > 1)
    with pytest.raises(BundleConfigError, match="give the item id"):
        resolve_items(ds, [dup])


def _unique_title(titles: list[str]) -> int:
    return next(i for i in range(2, len(titles)) if titles.count(titles[i]) == 1)


def test_complete_cli_json_on_a_saved_run(lightgcn, lightgcn_run, capsys):
    tokens, titles = catalogue(lightgcn_run.dataset)
    a = _unique_title(titles)
    argv = [f"--model_file={lightgcn['checkpoint']}", f"--items=i001,{titles[a]}", "--top_n=5", "--json"]
    assert complete_main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "LightGCN" and out["retriever"] is None
    assert [p["item"] for p in out["partial"]] == ["i001", tokens[a]]
    got = out["completions"]
    assert [c["rank"] for c in got] == [1, 2, 3, 4, 5]
    assert not {"i001", tokens[a]} & {c["item"] for c in got}
    assert [c["score"] for c in got] == sorted((c["score"] for c in got), reverse=True)
    expected = complete_bundle(lightgcn_run, ["i001", tokens[a]], top_n=5)
    assert [c["item"] for c in got] == [c.item for c in expected]
    assert all(c["title"] == titles[tokens.index(c["item"])] for c in got)
    assert complete_main([f"--model_file={lightgcn['checkpoint']}", "--items=i00l"]) == 2
    assert "'i001'" in capsys.readouterr().err
