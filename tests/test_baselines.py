"""Every baseline end to end through the one pipeline, on the shipped sample."""

import math

import pytest
import torch

from recbole_bundle import BundleChoiceModel
from recbole_bundle.quick_start import run_recbole_bundle

METRICS = {"hitrate@1", "validratio", "hitrate@1(valid)"}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run each baseline once (module scope keeps the suite fast)."""
    import shutil

    from tests.conftest import SAMPLE_DIR

    tmp = tmp_path_factory.mktemp("baselines")
    shutil.copytree(SAMPLE_DIR, tmp / "data" / "sample")
    cfg = {"data_path": str(tmp / "data"), "checkpoint_dir": str(tmp / "saved"), "show_progress": False,
           "state": "WARNING", "epochs": 15, "seed": 5}
    out = {}
    import os

    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        for name in ["Random", "Pop", "ItemKNN", "BPR", "LightGCN"]:
            out[name] = run_recbole_bundle(name, "sample", config_dict=cfg)
        out["Random-again"] = run_recbole_bundle("Random", "sample", config_dict=cfg)
        out["BPR-again"] = run_recbole_bundle("BPR", "sample", config_dict=cfg)
    finally:
        os.chdir(cwd)
    return out


@pytest.mark.parametrize("name", ["Random", "Pop", "ItemKNN", "BPR", "LightGCN"])
def test_baseline_runs_and_reports_choice_metrics(results, name):
    test = results[name]["test_result"]
    assert set(test) == METRICS
    assert test["validratio"] == 1.0
    assert 0.0 <= test["hitrate@1"] <= 1.0
    assert test["hitrate@1"] == test["hitrate@1(valid)"]


def test_learned_baselines_beat_random_on_structured_data(results):
    rnd = results["Random"]["test_result"]["hitrate@1"]
    assert abs(rnd - 0.1) < 0.05  # K=10
    assert results["Pop"]["test_result"]["hitrate@1"] > rnd + 0.02
    for name in ["ItemKNN", "LightGCN"]:  # co-occurrence structure is the sample's main signal
        assert results[name]["test_result"]["hitrate@1"] > rnd + 0.2, name
    assert results["ItemKNN"]["test_result"]["hitrate@1"] > results["Pop"]["test_result"]["hitrate@1"]


def test_same_seed_same_numbers(results):
    assert results["Random"]["test_result"] == results["Random-again"]["test_result"]
    assert results["BPR"]["test_result"] == results["BPR-again"]["test_result"]


def test_trained_models_checkpoint_and_reload(results):
    ckpt = results["LightGCN"]["checkpoint"]
    state = torch.load(ckpt, weights_only=False)
    assert "user_embedding.weight" in state["state_dict"]
    assert results["ItemKNN"]["checkpoint"] is None  # one-pass models are not checkpointed


class MeanCooc(BundleChoiceModel):
    """The README's example model: candidate score = learned item embedding · mean of partial bundle."""

    train_on = "questions"

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.emb = torch.nn.Embedding(self.n_items, 16, padding_idx=0)

    def score_candidates(self, interaction):
        partial = self.emb(interaction["partial"]).sum(1) / interaction["partial_len"].clamp(min=1)[:, None]
        return (self.emb(interaction["candidates"]) * partial[:, None]).sum(-1)

    def calculate_loss(self, interaction):
        return torch.nn.functional.cross_entropy(self.score_candidates(interaction), interaction["label"])


def test_new_model_is_one_class(run_config):
    run_config.update(epochs=3, learning_rate=0.01)
    r = run_recbole_bundle(MeanCooc, "sample", config_dict=run_config)
    assert r["model"] == "MeanCooc"
    assert r["test_result"]["validratio"] == 1.0
    assert not math.isnan(r["best_valid_score"])


def test_recbole_model_without_plugin_class_runs(run_config):
    run_config.update(epochs=1)
    r = run_recbole_bundle("NeuMF", "sample", config_dict=run_config)
    assert set(r["test_result"]) == METRICS
