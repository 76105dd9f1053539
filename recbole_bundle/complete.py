"""Complete a partial bundle from the whole catalogue with a trained model.

    python -m recbole_bundle.complete --model_file=saved/<run>.pth --items=i001,i042 --top_n=10
    python -m recbole_bundle.complete --model_file=exports/bundle_mllm --items="white linen shirt,i042" --json
    python -m recbole_bundle.complete --model_file=<run or folder> --items=... --retriever=LightGCN --pool=30

``--model_file`` is a training run's checkpoint (``saved/<run>.pth``, any model) or a folder written by
``BundleMLLM.save_pretrained``; ``--items`` are item ids (tokens) or titles, comma-separated.

* A **multiple-choice reranker** (BundleMLLM, the LLM baselines, any model with ``score_candidates`` and
  no catalogue scorer) cannot score 10^4 items: a **retriever** ranks every item outside the partial
  bundle, the reranker re-orders the retriever's top ``--pool`` (default ``--top_n``) with its own
  per-candidate scores (``scoring: candidate``: comparable scores in prompts of ``candidates_per_prompt``;
  letter scoring: the knock-out tournament of :func:`recbole_bundle.model.base.tournament_scores`).
  ``--retriever``: ``ItemKNN`` (default, fitted on the fly from the run's train split in seconds), a model
  name (trained now on the same split: minutes), or another saved run (``.pth``).
* A **full-catalogue model** (CLHE's ``full_sort_scores``; RecBole's ItemKNN/BPR/LightGCN/Pop) ranks the
  catalogue itself. A partial bundle given here is not one of the dataset's bundles, so RecBole models
  score it from its items ("fold-in"): ItemKNN exactly as it scores a bundle with that history (the
  summed item-item similarities), embedding models (BPR, LightGCN) with the mean of the items'
  embeddings as the bundle's embedding; Pop and Random do not depend on the bundle.

Items of the partial bundle (and padding) are never proposed. Output: rank, item id, score, title
(``--json``: one JSON object). The same retrieve / rerank functions run the ranking study
(:func:`recbole_bundle.studies.ranking_study`).
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import sys
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import torch
from recbole.data.interaction import Interaction

from recbole_bundle.data.dataloader import CANDIDATES, LABEL, PARTIAL, PARTIAL_LEN
from recbole_bundle.errors import BundleConfigError, BundleError
from recbole_bundle.ranking import (  # noqa: F401  (re-exported)
    DATA_KEYS, DEFAULT_RETRIEVER, catalogue_scores, fit_itemknn, is_reranker, rerank, retrieve,
    retriever_config_dict,
)

logger = logging.getLogger(__name__)


class Completion(NamedTuple):
    """One proposed item: its id (token), its title ('' without titles) and the deciding model's score."""

    item: str
    title: str
    score: float


# catalogue scoring lives in recbole_bundle.ranking (shared with the pipeline's catalogue metrics and the
# studies); imported here so complete.catalogue_scores / retrieve / rerank / is_reranker keep working.


# --------------------------------------------------------------------------- items


def catalogue(dataset) -> tuple[list[str], list[str]]:
    """(item tokens, item titles) by internal item id; titles are '' when the dataset has none."""
    tokens = [str(t) for t in dataset.field2id_token[dataset.iid_field]]
    titles = dataset.item_titles() if "title" in getattr(dataset, "field2type", {}) else [""] * len(tokens)
    return tokens, list(titles)


def resolve_items(dataset, items: Sequence[str | int]) -> list[int]:
    """Internal ids of ``items`` given as item ids (tokens) or titles (case-insensitive); an unknown or
    ambiguous entry stops with one message listing close matches. Repeated items count once."""
    tokens, titles = catalogue(dataset)
    by_token = {t: i for i, t in enumerate(tokens) if i > 0}
    by_title: dict[str, list[int]] = {}
    for i, t in enumerate(titles):
        if i > 0 and t:
            by_title.setdefault(" ".join(t.lower().split()), []).append(i)
    ids: list[int] = []
    unknown: list[str] = []
    for raw in items:
        name = str(raw).strip()
        if not name:
            continue
        if name in by_token:
            ids.append(by_token[name])
            continue
        hits = by_title.get(" ".join(name.lower().split()), [])
        if len(hits) == 1:
            ids.append(hits[0])
        elif len(hits) > 1:
            raise BundleConfigError(f"item title {name!r} names {len(hits)} items ({', '.join(tokens[i] for i in hits[:8])}); "
                                    "give the item id instead")
        else:
            unknown.append(name)
    if unknown:
        lines = []
        for name in unknown:
            close = _close(name, list(by_token))
            close += [tokens[by_title[t][0]] for t in _close(" ".join(name.lower().split()), list(by_title))]
            shown = ", ".join(dict.fromkeys(f"{c!r}" + (f" ({titles[by_token[c]]})" if titles[by_token[c]] else "")
                                            for c in close))
            lines.append(f"{name!r}: " + (f"close matches {shown}" if shown else "no close match"))
        raise BundleConfigError(
            f"unknown item(s) in the partial bundle - not an item id or title of dataset "
            f"{getattr(dataset, 'dataset_name', '')!r}: " + "; ".join(lines)
            + ". Give item ids (the item_id column of the .item/.inter files) or exact titles, comma-separated."
        )
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise BundleConfigError("the partial bundle is empty; give at least one item id or title (--items=i001,i042)")
    return ids


def _close(word: str, choices: list[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """The ``n`` choices closest to ``word`` by ``difflib``'s ratio, ties broken by the longer common prefix
    ('i00l' -> 'i001' before 'i050')."""
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(word)
    scored = []
    for c in choices:
        matcher.set_seq1(c)
        if matcher.real_quick_ratio() >= cutoff and matcher.quick_ratio() >= cutoff and matcher.ratio() >= cutoff:
            common = next((i for i, (a, b) in enumerate(zip(word, c)) if a != b), min(len(word), len(c)))
            scored.append((-matcher.ratio(), -common, c))
    return [c for *_, c in sorted(scored)[:n]]


def partial_interaction(ids: Sequence[int], uid_field: str) -> Interaction:
    """One question-shaped batch for a partial bundle that is not one of the dataset's bundles (bundle id 0)."""
    return Interaction({
        uid_field: torch.zeros(1, dtype=torch.long),
        PARTIAL: torch.tensor([list(ids)], dtype=torch.long),
        PARTIAL_LEN: torch.tensor([len(ids)], dtype=torch.long),
        CANDIDATES: torch.zeros((1, 1), dtype=torch.long),
        LABEL: torch.zeros(1, dtype=torch.long),
    })


# --------------------------------------------------------------------------- retrievers


def load_retriever(spec: str | torch.nn.Module | None, run=None, train_dataset=None, config=None) -> torch.nn.Module:
    """A catalogue scorer: a module as given; a saved run (``.pth`` / export folder) loaded on the same data;
    else a model name fitted now on the run's train split (``ItemKNN``, the default: seconds; trained
    models such as LightGCN or CLHE train now with the run's data settings: minutes)."""
    if isinstance(spec, torch.nn.Module):
        return spec.eval()
    spec = spec or DEFAULT_RETRIEVER
    if run is not None:
        train_dataset, config = run.train_data.dataset, run.config
    if Path(spec).suffix == ".pth" or Path(spec).is_dir():
        from recbole_bundle.inference import load

        overrides = {"data_path": str(Path(config["data_path"]).parent)} if config is not None else {}
        other = load(spec, **overrides)
        _same_items(other.train_data.dataset, train_dataset, spec)
        return other.model
    if config is None or train_dataset is None:
        raise BundleConfigError(f"fitting the retriever {spec!r} needs the run's config and train split: pass a loaded "
                                "run (recbole_bundle.load(...)) as the model, or a fitted retriever module")
    from recbole_bundle.config import BundleConfig
    from recbole_bundle.registry import get_model

    get_model(spec)  # unknown names: the usual message
    if spec == DEFAULT_RETRIEVER:  # fitted when built: reuse the run's train split, no second dataset load
        return fit_itemknn(config, train_dataset)
    from recbole_bundle.inference import build_run, fit_in_one_pass

    rcfg = BundleConfig(spec, config["dataset"], config_dict=retriever_config_dict(config))
    logger.info("training the retriever %s on %s (pass a saved run as the retriever to skip this)", spec, config["dataset"])
    from recbole.utils import ModelType

    from recbole_bundle.registry import get_trainer

    built = build_run(rcfg)
    _same_items(built.train_data.dataset, train_dataset, spec)
    if rcfg["MODEL_TYPE"] == ModelType.TRADITIONAL:
        fit_in_one_pass(built)
    else:
        trainer = get_trainer(rcfg["MODEL_TYPE"], rcfg["model"], rcfg.model_class)(rcfg, built.model)
        trainer.fit(built.train_data, built.valid_data, verbose=False, saved=False, show_progress=False)
    return built.model.eval()


def _same_items(a, b, what: str) -> None:
    if b is not None and list(a.field2id_token[a.iid_field]) != list(b.field2id_token[b.iid_field]):
        raise BundleConfigError(f"retriever {what}: it was built on another item catalogue than the model "
                                "(another dataset or data_path); use a retriever of the same dataset")


# --------------------------------------------------------------------------- completing


def complete_bundle(model: Any, partial_items: Sequence[str | int], top_n: int = 10, retriever: Any = None,
                    dataset: Any = None, pool: int | None = None, config: Any = None,
                    train_dataset: Any = None) -> list[Completion]:
    """The ``top_n`` items that best complete ``partial_items`` (ids or titles), best first.

    ``model``: a :class:`~recbole_bundle.inference.LoadedRun` (``recbole_bundle.load(...)``; then
    ``dataset``, ``config`` and the train split come from it) or a model module with ``dataset`` (for ids
    and titles). A full-catalogue model ranks every item itself; a multiple-choice reranker re-orders the
    ``retriever``'s top ``pool`` (default ``top_n``) with its per-candidate scores. ``retriever``: None
    (ItemKNN fitted on the run's train split), a model name, a saved run path, or a module with
    ``full_sort_scores``. Never returns an item of the partial bundle.
    """
    run = None
    if hasattr(model, "model") and hasattr(model, "dataset") and hasattr(model, "config"):  # a LoadedRun
        run = model
        model, dataset, config = run.model, dataset or run.dataset, config or run.config
        train_dataset = train_dataset or run.train_data.dataset
    if dataset is None:
        raise BundleConfigError("complete_bundle needs the dataset (item ids and titles): pass dataset=..., or a "
                                "loaded run (recbole_bundle.load(path)) as the model")
    if not isinstance(top_n, int) or top_n < 1:
        raise BundleConfigError(f"top_n must be an integer >= 1, got {top_n!r}")
    pool = top_n if pool is None else pool
    if not isinstance(pool, int) or pool < top_n:
        raise BundleConfigError(f"pool (the retriever's shortlist) must be an integer >= top_n={top_n}, got {pool!r}")
    ids = resolve_items(dataset, partial_items)
    batch = partial_interaction(ids, dataset.uid_field)
    model.eval()
    if is_reranker(model):
        ret = load_retriever(retriever, run, train_dataset, config)
        shortlist, _ = retrieve(ret, batch, pool, fold_in=True)
        items, scores = rerank(model, batch, shortlist)
    else:
        if retriever is not None:
            logger.warning("%s ranks the whole catalogue itself: the retriever %r is not used", type(model).__name__,
                           retriever if isinstance(retriever, str) else type(retriever).__name__)
        items, scores = retrieve(model, batch, top_n, fold_in=True)
    tokens, titles = catalogue(dataset)
    return [Completion(tokens[int(i)], titles[int(i)], float(s)) for i, s in zip(items[0, :top_n], scores[0, :top_n])]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m recbole_bundle.complete``: print the completions (a table, or JSON with ``--json``)."""
    p = argparse.ArgumentParser(prog="python -m recbole_bundle.complete", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_file", required=True, help="saved/<run>.pth of any model, or a BundleMLLM.save_pretrained folder")
    p.add_argument("--items", required=True, help="the partial bundle: comma-separated item ids or titles")
    p.add_argument("--top_n", type=int, default=10, help="how many items to propose")
    p.add_argument("--pool", type=int, default=None, help="rerankers: the retriever's shortlist size (default top_n)")
    p.add_argument("--retriever", default=None,
                   help="rerankers: ItemKNN (default, fitted now), LightGCN, CLHE, ... (trained now) or a saved run (.pth)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args, rest = p.parse_known_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        from recbole_bundle.inference import load

        run = load(args.model_file, cmd_args=rest, show_progress=False)
        names = [s for s in args.items.split(",") if s.strip()]
        result = complete_bundle(run, names, top_n=args.top_n, retriever=args.retriever, pool=args.pool)
        partial = resolve_items(run.dataset, names)
    except BundleError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    tokens, titles = catalogue(run.dataset)
    reranked = is_reranker(run.model)
    if args.json:
        out = {
            "model": run.config["model"], "dataset": run.config["dataset"], "model_file": str(args.model_file),
            "retriever": (args.retriever or DEFAULT_RETRIEVER) if reranked else None,
            "partial": [{"item": tokens[i], "title": titles[i]} for i in partial],
            "completions": [{"rank": r, "item": c.item, "title": c.title, "score": c.score}
                            for r, c in enumerate(result, 1)],
        }
        sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
        return 0
    how = (f"{run.config['model']} reranking {args.retriever or DEFAULT_RETRIEVER}'s top {args.pool or args.top_n}"
           if reranked else f"{run.config['model']} ranking the whole catalogue")
    sys.stdout.write(f"partial {run.config['bundle_name'] or 'bundle'}: "
                     + "; ".join(f"{tokens[i]} {titles[i]}".strip() for i in partial) + f"\n{how}:\n")
    width = max(len(c.item) for c in result) if result else 4
    for r, c in enumerate(result, 1):
        sys.stdout.write(f"{r:>3}. {c.item:<{width}}  {c.score:>10.4f}  {c.title}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
