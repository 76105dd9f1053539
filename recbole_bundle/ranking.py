"""Full-catalogue ranking and its metrics, shared by the pipeline, the completion tool and the studies.

* :func:`catalogue_scores` / :func:`retrieve` rank every item for each partial bundle (CLHE's
  ``full_sort_scores``; RecBole's ``full_sort_predict``), never one of the partial bundle's own items;
  :func:`rerank` re-orders a shortlist with any model's per-candidate scores (BundleMLLM, LLM baselines).
* :func:`ranking_metrics` is Recall@K / NDCG@K with RecBole's own metric classes.
* :func:`catalogue_metrics` is CLHE's protocol on a run's test split: one ranking per test bundle (the
  catalogue minus its partial bundle), every held-out item of the bundle relevant. Rerankers rank with an
  ItemKNN retriever fitted on the same run's train split and re-order its top ``catalogue_reranker_top_n``.
  ``run_recbole_bundle`` adds these ``recall@K`` / ``ndcg@K`` to ``test_result`` when
  ``catalogue_metrics`` is set, so they reach the comparison tables.

This module imports no other pipeline module (``complete``, ``studies`` and ``quick_start`` import it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from recbole.data.interaction import Interaction

from recbole_bundle.data.dataloader import PARTIAL, PARTIAL_LEN, questions_to_interaction
from recbole_bundle.errors import BundleConfigError

logger = logging.getLogger(__name__)

#: Config keys that define the data, split and questions: a retriever fitted for a run copies them.
DATA_KEYS = (
    "seed", "reproducibility", "split_seed", "bundle_split", "bundle_split_ratio", "eval_input_ratio", "min_bundle_size",
    "raw_format", "raw_data_path", "raw_pairs_file", "raw_titles_file", "load_col", "unload_col", "field_separator",
    "seq_separator", "USER_ID_FIELD", "ITEM_ID_FIELD", "rm_dup_inter", "user_inter_num_interval",
    "item_inter_num_interval", "filter_inter_by_user_or_item", "val_interval", "n_candidates", "neg_strategy",
    "neg_pop_alpha", "hard_neg_pool", "hard_neg_feature", "question_seed", "question_cache", "state",
)

#: The retriever rerankers rank the catalogue with (fitted on the run's train split in seconds).
DEFAULT_RETRIEVER = "ItemKNN"


# --------------------------------------------------------------------------- catalogue scoring


def is_reranker(net: torch.nn.Module) -> bool:
    """True for multiple-choice models that only score given candidates (BundleMLLM, LLM baselines):
    they need a retriever; False for models that score the whole catalogue (CLHE, RecBole models)."""
    return hasattr(net, "score_candidates") and not getattr(net, "ranks_catalogue", False)


def catalogue_scores(net: torch.nn.Module, interaction: Interaction, fold_in: bool = False) -> torch.Tensor:
    """``[B, n_items]`` scores of every item for each partial bundle of ``interaction``.

    CLHE-style models (``full_sort_scores``) read the partial bundle. RecBole models score a bundle by its
    id (``full_sort_predict``: the bundle's training history, as in the ranking study), or with
    ``fold_in`` from the partial bundle's items alone (bundles that are not in the dataset):
    ItemKNN = its summed item-item similarities (+ popularity tie-break), embedding models = the mean of
    the items' embeddings against every item; Pop and Random ignore the bundle.
    """
    if getattr(net, "ranks_catalogue", False):  # RecBole's models do not declare it
        return net.full_sort_scores(interaction)
    n = len(interaction[PARTIAL])
    if not fold_in:
        users = Interaction({net.USER_ID: interaction[net.USER_ID]}).to(net.device)
        return net.full_sort_predict(users).reshape(n, -1)
    partial, plen = interaction[PARTIAL], interaction[PARTIAL_LEN]
    if hasattr(net, "w") and hasattr(net, "pred_mat"):  # RecBole ItemKNN: pred = history @ w
        import scipy.sparse as sp

        rows = np.repeat(np.arange(n), plen.cpu().numpy())
        cols = np.concatenate([partial[i, : int(plen[i])].cpu().numpy() for i in range(n)])
        x = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(n, net.n_items))
        scores = np.asarray((x @ net.w).todense(), dtype=np.float64) + np.asarray(getattr(net, "tiebreak", 0.0))
        return torch.from_numpy(scores)
    if type(net).__name__ in ("Pop", "Random"):  # their catalogue scores do not depend on the bundle
        users = Interaction({net.USER_ID: torch.zeros(n, dtype=torch.long)}).to(net.device)
        return net.full_sort_predict(users).reshape(n, -1)
    if hasattr(net, "item_embeddings"):  # our LightGCN: propagated item embeddings
        items = net.item_embeddings()
    elif isinstance(getattr(net, "item_embedding", None), torch.nn.Embedding):  # BPR & co.
        items = net.item_embedding.weight
    else:
        raise BundleConfigError(
            f"{type(net).__name__} scores only the dataset's own bundles (by bundle id), not a new partial bundle; "
            "use a model with item embeddings (BPR, LightGCN), ItemKNN, CLHE, or a reranker (BundleMLLM) with a retriever"
        )
    items = items.detach()
    mask = (torch.arange(partial.shape[1], device=partial.device)[None, :] < plen[:, None]).to(items.dtype)
    bundle = (items[partial.to(items.device)] * mask.to(items.device)[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1).to(items.device)
    return bundle @ items.T


def retrieve(net: torch.nn.Module, interaction: Interaction, n: int, fold_in: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The top ``n`` items of the catalogue for each partial bundle, never one of its own items nor padding:
    ``(item ids [B, n], scores [B, n])``, best first, ties by item id (``n`` is capped at the items available)."""
    with torch.no_grad():
        scores = catalogue_scores(net, interaction, fold_in).detach().float().cpu().clone()
    partial = interaction[PARTIAL].cpu()
    scores[:, 0] = -torch.inf
    scores.scatter_(1, partial, -torch.inf)  # the partial bundle's own items are not answers
    available = int((scores > -torch.inf).sum(1).min())
    # a stable sort: ties go to the smaller item id, so the ranking (and its metrics) is reproducible
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, : min(n, available)]
    return order, scores.gather(1, order)


def rerank(net: torch.nn.Module, interaction: Interaction, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``candidates`` ``[B, N]`` re-ordered by ``net``'s per-candidate scores (any model, through
    :func:`recbole_bundle.model.base.score_candidates`; K beyond one prompt is split or played as a
    tournament by the model): ``(items [B, N], scores [B, N])``, best first; ties and invalid (NaN)
    answers keep the incoming order."""
    from recbole_bundle.model.base import score_candidates, with_candidates

    device = getattr(net, "device", candidates.device)
    with torch.no_grad():
        q = with_candidates(interaction.to(device), candidates.to(device))
        scores = score_candidates(net, q).detach().float().cpu()
    scores = torch.nan_to_num(scores, nan=-torch.inf)
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices
    return candidates.cpu().gather(1, order), scores.gather(1, order)


def retriever_config_dict(config: Any) -> dict[str, Any]:
    """``config_dict`` for a retriever built for the run of ``config``: its data settings (:data:`DATA_KEYS`),
    the same data folder and device, no progress bars; strings stay text ("0", " ")."""
    from recbole_bundle.config import parse_value

    settings = {k: config[k] for k in DATA_KEYS if k in config and config[k] is not None}
    settings["data_path"] = str(Path(config["data_path"]).parent)
    settings.update(show_progress=False, device=str(config["device"]))
    return {k: repr(v) if isinstance(v, str) and parse_value(v) != v else v for k, v in settings.items()}


def fit_itemknn(config: Any, train_dataset: Any) -> torch.nn.Module:
    """An ItemKNN retriever fitted now (seconds) on ``train_dataset``, the run's train split, with the run's
    data settings; no second dataset load."""
    from recbole_bundle.config import BundleConfig

    rcfg = BundleConfig(DEFAULT_RETRIEVER, config["dataset"], config_dict=retriever_config_dict(config))
    return rcfg.model_class(rcfg, train_dataset).eval()


# --------------------------------------------------------------------------- metrics (CLHE's protocol)


def ranking_metrics(ranked: np.ndarray | torch.Tensor, truth: Sequence[set], ks: Sequence[int]) -> dict[str, float]:
    """``recall@K`` / ``ndcg@K`` of item rankings ``[B, >= max(ks)]`` (best first) against the relevant
    items of each row, with RecBole's metric classes (``rec.topk`` = hits of the top-K + #relevant)."""
    from recbole.evaluator.collector import DataStruct
    from recbole.evaluator.metrics import NDCG, Recall

    ranked = np.asarray(ranked)
    if ranked.ndim != 2 or ranked.shape[1] < max(ks):
        raise BundleConfigError(f"ranking_metrics: rankings of shape {ranked.shape} are shorter than the largest "
                                f"cut-off {max(ks)}; rank at least {max(ks)} items per row")
    hits = torch.tensor([[int(i) in t for i in row[: max(ks)]] for row, t in zip(ranked, truth)], dtype=torch.int)
    struct = DataStruct()
    struct.set("rec.topk", torch.cat([hits, torch.tensor([[len(t)] for t in truth], dtype=torch.int)], dim=1))
    cfg = {"topk": list(ks), "metric_decimal_place": 4}
    values = {**Recall(cfg).calculate_metric(struct), **NDCG(cfg).calculate_metric(struct)}
    return {f"{m}@{k}": float(values[f"{m}@{k}"]) for k in ks for m in ("recall", "ndcg")}  # by cut-off


def bundles_of(questions: Any) -> tuple[np.ndarray, list[set]]:
    """One row per evaluated bundle of ``questions`` (one question per held-out item): the index of its
    first question (whose partial bundle stands for the bundle) and the set of its held-out items."""
    first: dict[int, int] = {}
    truth: dict[int, set] = {}
    for q, b in enumerate(questions.bundle):
        first.setdefault(int(b), q)
        truth.setdefault(int(b), set()).add(int(questions.positive[q]))
    rows = np.asarray(list(first.values()), dtype=np.int64)
    return rows, [truth[int(questions.bundle[r])] for r in rows]


def rank_bundles(retriever: torch.nn.Module, questions: Any, rows: np.ndarray, n: int,
                 reranker: torch.nn.Module | None = None, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray | None]:
    """The retriever's top ``n`` of the catalogue minus the partial bundle for each question in ``rows``, and
    (with ``reranker``) the same shortlist re-ordered by the reranker: ``(retrieved, reranked or None)``."""
    uid = retriever.USER_ID
    retrieved, reranked = [], []
    with torch.no_grad():
        for s in range(0, len(rows), batch_size):
            batch = questions_to_interaction(questions, rows[s : s + batch_size], uid).to(retriever.device)
            top, _ = retrieve(retriever, batch, n)
            retrieved.append(top)
            if reranker is not None:
                reranked.append(rerank(reranker, batch, top)[0])
    return torch.cat(retrieved).numpy(), (torch.cat(reranked).numpy() if reranker is not None else None)


def check_catalogue_config(config: Any) -> list[int]:
    """The cut-offs of ``catalogue_metrics`` (``[]`` when off), checked before any training: a list of
    integers >= 1, and ``catalogue_reranker_top_n`` an integer >= the largest one."""
    ks = config["catalogue_metrics"]
    if ks is None or ks == []:
        return []
    if isinstance(ks, int) and not isinstance(ks, bool):
        ks = [ks]
    if not isinstance(ks, (list, tuple)) or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in ks):
        raise BundleConfigError(f"config key 'catalogue_metrics' = {ks!r} must be a list of cut-offs >= 1, e.g. "
                                "--catalogue_metrics=[10,20], or ~ for off")
    top_n = config["catalogue_reranker_top_n"]
    if not isinstance(top_n, int) or isinstance(top_n, bool) or top_n < max(ks):
        raise BundleConfigError(f"config key 'catalogue_reranker_top_n' = {top_n!r} must be an integer >= the largest "
                                f"catalogue_metrics cut-off {max(ks)} (a reranker only re-orders its retriever's top N); "
                                f"set --catalogue_reranker_top_n={max(ks)} or more")
    return sorted(set(ks))


def catalogue_metrics(net: torch.nn.Module, test_data: Any, config: Any, train_dataset: Any) -> dict[str, float]:
    """CLHE's protocol on the test split: ``recall@K`` / ``ndcg@K`` for K in ``catalogue_metrics`` (``{}``
    when it is ~). A model that ranks the catalogue ranks it itself; a reranker re-orders the top
    ``catalogue_reranker_top_n`` of an ItemKNN retriever fitted on ``train_dataset``."""
    ks = check_catalogue_config(config)
    if not ks:
        return {}
    rows, truths = bundles_of(test_data.questions)
    net.eval()
    if is_reranker(net):
        retriever = fit_itemknn(config, train_dataset)
        _, ranked = rank_bundles(retriever, test_data.questions, rows, int(config["catalogue_reranker_top_n"]), net)
        how = f"{DEFAULT_RETRIEVER}'s top {config['catalogue_reranker_top_n']} reranked by {type(net).__name__}"
    elif hasattr(net, "full_sort_predict") or getattr(net, "ranks_catalogue", False):
        ranked, _ = rank_bundles(net, test_data.questions, rows, max(ks))
        how = f"{type(net).__name__} ranking the catalogue"
    else:
        logger.warning("%s neither ranks the catalogue nor scores candidates: no catalogue metrics", type(net).__name__)
        return {}
    result = ranking_metrics(ranked, truths, ks)
    logger.info("catalogue metrics (%s, %d test bundles): %s", how, len(rows), result)
    return result
