"""Every baseline end to end through the one pipeline, on the shipped sample."""

import pytest
import torch

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
           "state": "WARNING", "epochs": 15, "seed": 5, "train_batch_size": 256}
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


MEAN_EMB_PY = '''
import torch
from recbole_bundle import BundleChoiceModel


class MeanEmb(BundleChoiceModel):
    """Candidate score = its embedding . the mean embedding of the partial bundle."""
    train_on = "questions"          # fresh multiple-choice questions each epoch

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.emb = torch.nn.Embedding(self.n_items, config["embedding_size"], padding_idx=0)
        self.scale = config["mean_emb_scale"]

    def score_candidates(self, interaction):          # [B, K]
        p = self.emb(interaction["partial"]).sum(1) / interaction["partial_len"][:, None]
        return self.scale * (self.emb(interaction["candidates"]) * p[:, None]).sum(-1)

    def calculate_loss(self, interaction):
        return torch.nn.functional.cross_entropy(self.score_candidates(interaction), interaction["label"])
'''

MEAN_EMB_YAML = """\
embedding_size: 32                # (int) Item embedding size.
mean_emb_scale: 0.1               # (float) A key only this model declares (score temperature).
learning_rate: 0.05               # (float) Adam learning rate.
epochs: 12                        # (int) Maximum epochs.
train_batch_size: 32              # (int) Questions per step.
"""


def test_new_model_is_one_class_and_one_yaml_outside_the_plugin(run_config, tmp_path, monkeypatch):
    """The README's pattern: a class in the user's own file and ``<Class>.yaml`` beside it, no edit to the
    plugin; the yaml's keys (one only this model declares) reach the model, and it learns on the sample."""
    import importlib.util
    import sys

    from recbole_bundle.errors import BundleConfigError

    folder = tmp_path / "my_models"
    folder.mkdir()
    (folder / "mean_emb.py").write_text(MEAN_EMB_PY)
    (folder / "MeanEmb.yaml").write_text(MEAN_EMB_YAML)
    spec = importlib.util.spec_from_file_location("mean_emb", folder / "mean_emb.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "mean_emb", module)  # as `import mean_emb` would
    spec.loader.exec_module(module)
    for key in ("epochs", "train_batch_size"):  # the model's yaml sets them
        run_config.pop(key)
    r = run_recbole_bundle(module.MeanEmb, "sample", config_dict=run_config)
    assert r["model"] == "MeanEmb"
    assert (r["config"]["embedding_size"], r["config"]["mean_emb_scale"], r["config"]["epochs"]) == (32, 0.1, 12)
    assert r["test_result"]["hitrate@1"] > 0.2  # it learns: chance is 1/K = 0.1
    with pytest.raises(BundleConfigError, match="mean_emb_scale"):  # its keys are known keys: typos get a hint
        run_recbole_bundle(module.MeanEmb, "sample", config_dict={**run_config, "mean_emb_scal": 1.0})


def test_recbole_model_without_plugin_class_runs(run_config):
    run_config.update(epochs=1)
    r = run_recbole_bundle("NeuMF", "sample", config_dict=run_config)
    assert set(r["test_result"]) == METRICS


def test_itemknn_all_neighbours_keeps_every_similarity_without_an_items_squared_array(run_config):
    """``k: ~`` keeps every non-zero similarity (the same model as k = n_items) with k = the largest number of
    items any item co-occurs with, not n_items (RecBole stores an n_items x k neighbour array)."""
    import numpy as np

    from recbole_bundle.config import BundleConfig
    from recbole_bundle.data.prepare import create_dataset, data_preparation
    from recbole_bundle.model.itemknn import ItemKNN, all_neighbours

    def fitted(k):
        cfg = BundleConfig("ItemKNN", "sample", config_dict={**run_config, "k": k})
        train, _, _ = data_preparation(cfg, create_dataset(cfg))
        return ItemKNN(cfg, train.dataset), train.dataset

    everything, ds = fitted(None)
    k = all_neighbours(ds)
    assert everything.k == k < ds.item_num
    x = ds.inter_matrix(form="csr").astype(bool).astype(int)
    partners = (x.T @ x).tocsr()
    assert k == max(partners[i].nnz for i in range(ds.item_num))
    full, _ = fitted(ds.item_num)  # the old setting: the same similarities, to the last bit
    assert (everything.w != full.w).nnz == 0 and everything.w.nnz == full.w.nnz
    assert (everything.pred_mat != full.pred_mat).nnz == 0
    assert np.array_equal(everything.tiebreak, full.tiebreak)
