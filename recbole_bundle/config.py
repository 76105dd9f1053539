"""BundleConfig: RecBole's Config plus the plugin's properties, explicit command-line args and checks.

Order of precedence (later wins), as in RecBole:
RecBole's internal yamls < plugin ``properties/overall.yaml`` < ``properties/model/<Model>.yaml``
< ``properties/dataset/<dataset>.yaml`` < user ``config_file_list`` < ``config_dict`` < ``cmd_args``.

Nothing the user gives is silently ignored or changed: a key no yaml declares (a typo such as
``--n_candidate=5``) stops the run with a did-you-mean naming where the key came from; values are
checked against the type their yaml declares (the default's type, else the ``# (int)`` annotation)
and against the ranges the protocol needs; ``--device=cuda`` without CUDA is an error, not a CPU run.
Command-line values are read with :func:`ast.literal_eval` (RecBole uses ``eval``), so a value never
runs code.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import functools
import math
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml
from recbole.config import Config
from recbole.utils import ModelType

from recbole_bundle.errors import BundleConfigError
from recbole_bundle.registry import get_model, is_plugin_model, plugin_model_names
from recbole_bundle.resources import properties_dir, recbole_properties_dir

#: Keys RecBole 1.2.1 reads or sets although none of its yamls declares them (from a grep of its
#: ``config[...]`` reads), plus ``config_files``; every yaml key of RecBole and of this plugin is known too.
RECBOLE_INTERNAL_KEYS = frozenset({
    "model", "dataset", "device", "encoding", "local_rank", "nproc", "offset", "ip", "port", "world_size",
    "single_spec", "verbose", "MODEL_TYPE", "MODEL_INPUT_TYPE", "eval_type", "valid_neg_sample_args",
    "test_neg_sample_args", "config_files", "CROP_ITEM_SEQ", "CROP_ITEM_SEQ_LEN", "INVERSE_ITEM_SEQ", "MASK_INDEX",
    "MASK_ITEM_SEQ", "NEG_ITEMS", "POS_ITEMS", "REORDER_ITEM_SEQ", "cin", "contrast", "eta", "feature_num",
    "has_residual", "norm", "sim", "tail_ratio", "token_num_threshold", "use_filter", "xgb_early_stopping_rounds",
})

#: Models from RecBole that score (bundle, candidate) pairs on the bundle–item graph.
RUNNABLE_TYPES = (ModelType.GENERAL, ModelType.TRADITIONAL)

_ANNOTATION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:.*#\s*\(([^)]*)\)")
_TYPE_WORDS = {"int": int, "float": float, "bool": bool, "str": str, "list": list, "dict": dict}


def plugin_config_files(model_class: type, dataset: str) -> list[str]:
    """The plugin yaml files that apply to (model, dataset), lowest precedence first.

    A model's yaml is layered over its base classes' yamls, so a variant (e.g. ``LLMZeroShot`` over
    ``BundleMLLM``) writes only the keys it changes.
    """
    root = properties_dir()
    models = [model_yaml(c) for c in reversed(model_class.__mro__)]
    files = [root / "overall.yaml", *[m for m in models if m is not None], root / "dataset" / f"{dataset}.yaml"]
    return [str(f) for f in files if f.is_file()]


def model_yaml(cls: type) -> Path | None:
    """A model class's yaml: ``properties/model/<Name>.yaml``, else ``<Name>.yaml`` beside the file that
    defines the class, so a user's model outside the plugin is one class and one yaml side by side (its
    keys are then known keys of the run)."""
    packaged = properties_dir() / "model" / f"{cls.__name__}.yaml"
    if packaged.is_file():
        return packaged
    try:
        source = inspect.getsourcefile(cls)
    except TypeError:  # built-in classes
        return None
    beside = Path(source).with_name(f"{cls.__name__}.yaml") if source else None
    return beside if beside is not None and beside.is_file() else None


def parse_cmd_args(args: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``--key=value`` arguments from the rest (RecBole's syntax, without reading sys.argv)."""
    parsed: dict[str, str] = {}
    rest: list[str] = []
    for arg in args:
        if arg.startswith("--") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            if key in parsed and parsed[key] != value:
                raise BundleConfigError(f"command-line key '--{key}' given twice with different values")
            parsed[key] = value
        else:
            rest.append(arg)
    return parsed, rest


def parse_value(text: str) -> Any:
    """A command-line value: a Python literal (``5``, ``0.1``, ``[1, 2]``, ``None``), ``true``/``false``,
    a bracketed list of bare words (``[s1,s2]``), else the text itself. Never evaluates code."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        inner = stripped[1:-1].strip()
        return [parse_value(part.strip().strip("'\"")) for part in inner.split(",")] if inner else []
    return text


def parse_int_list(text: str, flag: str, minimum: int | None = None) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]`` for a command-line flag, or one message naming the flag and the fix."""
    parts = [t.strip() for t in str(text).split(",") if t.strip()]
    try:
        values = [int(t) for t in parts]
    except ValueError:
        raise BundleConfigError(f"{flag}={text!r} must be comma-separated integers, e.g. {flag}=1,2,3") from None
    if not values:
        raise BundleConfigError(f"{flag} is empty; give comma-separated integers, e.g. {flag}=1,2,3")
    if minimum is not None and min(values) < minimum:
        raise BundleConfigError(f"{flag}={text!r}: every value must be >= {minimum}")
    return values


# --------------------------------------------------------------------------- known keys and types


def _top_level_keys(path: Path) -> tuple[list[str], dict[str, str]]:
    """Top-level keys of a yaml file and their ``# (type)`` annotations (comment text, not executed)."""
    keys: list[str] = []
    notes: dict[str, str] = {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return keys, notes
    if isinstance(data, dict):
        keys = [str(k) for k in data]
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _ANNOTATION.match(line)
        if m:
            notes[m.group(1)] = m.group(2)
    return keys, notes


@functools.lru_cache(maxsize=1)
def _recbole_declarations() -> tuple[dict[str, str], dict[str, str]]:
    """(key -> RecBole yaml declaring it, key -> its ``# (type)`` annotation); RecBole's files never change."""
    return _declarations(sorted(recbole_properties_dir().rglob("*.yaml")))


def _declarations(files: Iterable[Path]) -> tuple[dict[str, str], dict[str, str]]:
    where: dict[str, str] = {}
    notes: dict[str, str] = {}
    for f in files:
        keys, ann = _top_level_keys(f)
        for k in keys:
            where.setdefault(k, str(f))
        for k, v in ann.items():
            notes[k] = _union(notes.get(k), v)
    return where, notes


def known_config_keys() -> dict[str, str]:
    """Every key a run may set, mapped to where it is declared: RecBole's yamls, this plugin's
    ``properties/**/*.yaml`` and :data:`RECBOLE_INTERNAL_KEYS`."""
    known = {k: "RecBole (internal)" for k in RECBOLE_INTERNAL_KEYS}
    known.update(_recbole_declarations()[0])
    known.update(_declarations(sorted(properties_dir().rglob("*.yaml")))[0])
    return known


def _annotations() -> dict[str, str]:
    notes = dict(_recbole_declarations()[1])
    for k, v in _declarations(sorted(properties_dir().rglob("*.yaml")))[1].items():
        notes[k] = _union(notes.get(k), v)
    return notes


def _union(old: str | None, new: str) -> str:
    """Two annotations of one key (e.g. RecBole's "list or str" and ours "list") accept either's types."""
    return new if not old or old == new else f"{old} or {new}"


def _annotated_types(note: str) -> tuple[type, ...]:
    """``"list or str"`` -> (list, str); words that are not types are ignored."""
    return tuple(_TYPE_WORDS[w] for w in re.findall(r"[a-z]+", note.lower()) if w in _TYPE_WORDS)


def did_you_mean(word: str, choices: Iterable[str], n: int = 1) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices`` (a case-insensitive match first), or ''."""
    choices = list(dict.fromkeys(choices))
    same_case = [c for c in choices if c.lower() == word.lower()]
    close = same_case or difflib.get_close_matches(word, choices, n=n, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[c] for c in difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.6)]
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _type_name(value: Any) -> str:
    return type(value).__name__


def _compatible(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    if isinstance(default, str):  # numbers are fine where text is expected (gpu_id: 0, a numeric name)
        return isinstance(value, (str, int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


def _matches(types: tuple[type, ...], value: Any) -> bool:
    if value is None or not types:
        return True
    for t in types:
        if t is bool and isinstance(value, bool):
            return True
        if isinstance(value, bool):
            continue
        if t is float and isinstance(value, (int, float)):
            return True
        if t is int and isinstance(value, int):
            return True
        if t is str and isinstance(value, (str, int, float)):
            return True
        if t is list and isinstance(value, (list, tuple)):
            return True
        if t is dict and isinstance(value, dict):
            return True
    return False


# --------------------------------------------------------------------------- models and datasets


def _recbole_model_names() -> list[str]:
    return sorted(p.stem for p in (recbole_properties_dir() / "model").glob("*.yaml"))


def resolve_model(model: str | type) -> type:
    """The model class for ``model``; a wrong-case or misspelt name gets a did-you-mean, and a RecBole model
    of a type this plugin cannot run (sequential, context-aware, knowledge-based) a message saying which run."""
    if isinstance(model, str):
        names = plugin_model_names() + _recbole_model_names()
        try:
            if model not in names and any(n.lower() == model.lower() for n in names):
                raise BundleConfigError(f"unknown model '{model}' (model names are case-sensitive).")
            cls = get_model(model)
        except (BundleConfigError, AttributeError, ImportError, ValueError) as e:
            text = str(e) if isinstance(e, BundleConfigError) else f"unknown model '{model}'."
            raise BundleConfigError(f"{text}{did_you_mean(model, names)}") from None
    else:
        cls = model
    mtype = getattr(cls, "type", None)
    if not (isinstance(cls, type) and (is_plugin_model(cls) or mtype in RUNNABLE_TYPES)):
        kind = getattr(mtype, "name", str(mtype)).lower()
        raise BundleConfigError(
            f"model '{getattr(cls, '__name__', cls)}' is a RecBole {kind} model, which needs "
            f"{'sequences' if mtype == ModelType.SEQUENTIAL else 'context features' if mtype in (ModelType.CONTEXT, ModelType.DECISIONTREE) else 'a knowledge graph' if mtype == ModelType.KNOWLEDGE else 'other inputs'}"
            f"; recbole_bundle runs its own models ({', '.join(n for n in plugin_model_names() if n != 'BundleChoiceModel')}) "
            f"and RecBole's general "
            f"and traditional models on the bundle–item graph (e.g. Random, Pop, ItemKNN, BPR, LightGCN, NeuMF)"
        )
    return cls


def check_dataset_name(dataset: str) -> None:
    """A dataset is a folder name under ``data_path``, never a path (``../x`` would escape it)."""
    text = str(dataset)
    if not text or "/" in text or "\\" in text or text in (".", "..") or text.startswith("~"):
        p = Path(text.replace("\\", "/")).expanduser()
        raise BundleConfigError(
            f"--dataset={text!r} is a path, but a dataset is a folder NAME under data_path; give its parent "
            f"folder as data_path and its name as dataset: --data_path={p.parent or '.'} --dataset={p.name or '<name>'}"
        )


# --------------------------------------------------------------------------- the config


class BundleConfig(Config):
    """RecBole ``Config`` for the plugin.

    Args:
        model: model name (looked up in recbole_bundle first, then RecBole) or class.
        dataset: dataset name (a folder name under ``data_path``, not a path).
        config_file_list: user yaml files.
        config_dict: user parameters.
        cmd_args: ``--key=value`` strings (the CLI passes its unparsed argv; never read from sys.argv).
    """

    def __init__(
        self,
        model: str | type,
        dataset: str,
        config_file_list: Sequence[str] | None = None,
        config_dict: dict | None = None,
        cmd_args: Sequence[str] | None = None,
    ) -> None:
        model_class = resolve_model(model)
        check_dataset_name(dataset)
        self._cmd_args = list(cmd_args or [])
        self._plugin_files = plugin_config_files(model_class, dataset)
        self._user_files = [str(f) for f in (config_file_list or [])]
        user_sources = self._user_sources(config_dict)
        self._check_known_keys(user_sources)
        self._user_given = {k for _, values in user_sources for k in values}
        self._check_metrics(user_sources)
        files = self._plugin_files + self._user_files
        try:
            super().__init__(model_class, dataset, files, config_dict)
        except yaml.YAMLError as e:  # pragma: no cover - caught by _user_sources first
            raise BundleConfigError(f"a config file is not valid YAML: {e}") from e
        self._sources = user_sources
        self._check_types()
        self._check_values()

    # ------------------------------------------------------------------ reading
    def _user_sources(self, config_dict: Mapping | None) -> list[tuple[str, dict]]:
        """What the user gave, lowest precedence first: each config file, ``config_dict``, the command line."""
        sources: list[tuple[str, dict]] = []
        for f in self._user_files:
            path = Path(f)
            if not path.is_file():
                raise BundleConfigError(f"config file '{f}' does not exist; check the path given to --config_files")
            try:
                data = yaml.load(path.read_text(encoding="utf-8-sig"), Loader=self._build_yaml_loader())
            except yaml.YAMLError as e:
                raise BundleConfigError(f"config file '{f}' is not valid YAML ({e}); fix the line it names") from e
            except UnicodeDecodeError as e:
                raise BundleConfigError(f"config file '{f}' is not UTF-8 text ({e}); save it as UTF-8") from e
            if data is None:
                data = {}
            if not isinstance(data, dict):
                raise BundleConfigError(f"config file '{f}' must hold 'key: value' lines (a mapping), "
                                        f"got a {_type_name(data)}")
            sources.append((f"config file '{f}'", data))
        if config_dict:
            sources.append(("config_dict", dict(config_dict)))
        parsed, rest = parse_cmd_args(self._cmd_args)
        if rest:
            raise BundleConfigError(
                f"command-line argument(s) {rest} are not --key=value; write each config key as --key=value "
                f"(e.g. --seed=7, not '--seed 7')"
            )
        sources.append(("command line", {k: parse_value(v) for k, v in parsed.items()}))
        return sources

    def _load_config_files(self, file_list):
        """RecBole's reader, but a BOM is skipped and a non-mapping file is never merged."""
        merged: dict = {}
        for f in file_list or []:
            data = yaml.load(Path(f).read_text(encoding="utf-8-sig"), Loader=self.yaml_loader) or {}
            if isinstance(data, dict):
                merged.update(data)
        return merged

    def _load_cmd_line(self) -> dict:
        parsed, _ = parse_cmd_args(self._cmd_args)
        return {k: self._cmd_value(k, parse_value(v)) for k, v in parsed.items()}

    def _convert_config_dict(self, config_dict):
        """RecBole evals strings in ``config_dict``; read them as literals instead (never runs code)."""
        return {k: parse_value(v) if isinstance(v, str) else v for k, v in config_dict.items()}

    @staticmethod
    def _cmd_value(key: str, value: Any) -> Any:
        """On the command line everything is text: a number given for a text key stays text."""
        default = _DEFAULT_TEXT_KEYS.get(key)
        if default and isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return value

    def compatibility_settings(self) -> None:
        from recbole_bundle.compat import patch_numpy_aliases

        patch_numpy_aliases()
        super().compatibility_settings()

    # ------------------------------------------------------------------ checks
    def _check_known_keys(self, sources: list[tuple[str, dict]]) -> None:
        known = {**known_config_keys(), **_declarations([Path(f) for f in self._plugin_files])[0]}
        for where, values in sources:
            for key in values:
                if key in known:
                    continue
                line = ""
                if where.startswith("config file"):
                    path = Path(where.split("'")[1])
                    for n, text in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
                        if re.match(rf"\s*{re.escape(str(key))}\s*:", text):
                            line = f", line {n}"
                            break
                shown = f"--{key}" if where == "command line" else repr(key)
                raise BundleConfigError(
                    f"unknown config key {shown} (from {where}{line}).{did_you_mean(str(key), known)} "
                    f"Known keys are declared in properties/overall.yaml, properties/model/<Model>.yaml, "
                    f"properties/dataset/<dataset>.yaml and RecBole's own yamls; fix the spelling or remove it."
                )

    def _check_metrics(self, sources: list[tuple[str, dict]]) -> None:
        """Only the multiple-choice metrics can be computed on questions; RecBole would crash on others."""
        from recbole_bundle.metrics import CHOICE_METRICS, display_metric_name

        supported = {cls.name: display_metric_name(cls.name) for cls in CHOICE_METRICS}
        merged, origin = {}, {}
        for f in self._plugin_files:
            data = yaml.safe_load(Path(f).read_text(encoding="utf-8")) or {}
            for k in ("metrics", "valid_metric"):
                if k in data:
                    merged[k], origin[k] = data[k], f
        for where, values in sources:
            for k in ("metrics", "valid_metric"):
                if k in values:
                    merged[k], origin[k] = values[k], where
        metrics = merged.get("metrics", list(supported.values()))
        metrics = [metrics] if isinstance(metrics, str) else metrics
        if not isinstance(metrics, (list, tuple)) or not metrics:
            raise BundleConfigError(f"config key 'metrics' (from {origin.get('metrics')}) must be a non-empty list "
                                    f"of {list(supported.values())}, got {metrics!r}")
        for m in metrics:
            if str(m).lower() not in supported:
                raise BundleConfigError(
                    f"config key 'metrics' (from {origin.get('metrics')}): {m!r} is not a multiple-choice metric; "
                    f"supported: {list(supported.values())}.{did_you_mean(str(m), supported.values())}"
                )
        valid = merged.get("valid_metric", "HitRate@1")
        if not isinstance(valid, str) or valid.lower() not in {str(m).lower() for m in metrics}:
            raise BundleConfigError(
                f"config key 'valid_metric' (from {origin.get('valid_metric', 'properties/overall.yaml')}) = {valid!r} "
                f"must be one of the metrics {list(metrics)} (early stopping reads it from their results)."
                f"{did_you_mean(str(valid), metrics)}"
            )

    def _defaults(self) -> dict[str, tuple[Any, str]]:
        """Default value and source file of every key a yaml (RecBole's or the plugin's) declares."""
        defaults: dict[str, tuple[Any, str]] = {}
        recbole_root = recbole_properties_dir()
        for f in [recbole_root / "overall.yaml", recbole_root / "dataset" / "sample.yaml", *map(Path, self._plugin_files)]:
            if not f.is_file():
                continue
            with open(f, encoding="utf-8") as fh:
                data = yaml.load(fh.read(), Loader=self.yaml_loader) or {}
            for key, value in data.items():
                if value is not None and key not in defaults:
                    defaults[key] = (value, str(f))
        return defaults

    def _check_types(self) -> None:
        """Stop with a message naming the key when a user value has the wrong type: the type of its default,
        else (keys whose default is ~) the ``# (int)``-style annotation in the yaml declaring it."""
        sources = [("command line", self.cmd_config_dict), ("config_dict", self.variable_config_dict),
                   ("config files", self.file_config_dict)]
        defaults = self._defaults()
        notes = _annotations()
        for key, (default, origin) in defaults.items():
            for where, given in sources:
                if key in given and not (_compatible(default, given[key])
                                         or _matches(_annotated_types(notes.get(key, "")) or (type(None),), given[key])):
                    raise BundleConfigError(
                        f"config key '{key}' (from {where}) must be {_type_name(default)} like its default "
                        f"{default!r} in {origin}, got {_type_name(given[key])} {given[key]!r}"
                    )
        known = known_config_keys()
        for key, note in notes.items():
            if key in defaults:
                continue
            types = _annotated_types(note)
            for where, given in sources:
                if key in given and not _matches(types, given[key]):
                    raise BundleConfigError(
                        f"config key '{key}' (from {where}) must be {' or '.join(t.__name__ for t in types)} "
                        f"(see {known.get(key, 'its yaml')}), got {_type_name(given[key])} {given[key]!r}"
                    )

    def _where(self, key: str) -> str:
        """Where the final value of ``key`` came from (the last user source that sets it, else the yamls)."""
        for where, values in reversed(self._sources):
            if key in values:
                return where
        for f in reversed(self._plugin_files):
            data = yaml.safe_load(Path(f).read_text(encoding="utf-8")) or {}
            if key in data:
                return f
        return "RecBole's defaults"

    def _fail(self, key: str, rule: str, fix: str) -> None:
        raise BundleConfigError(
            f"config key '{key}' (from {self._where(key)}) = {self.final_config_dict.get(key)!r} {rule}; {fix}"
        )

    def _check_values(self) -> None:
        """Ranges the protocol needs (RecBole would clamp, renormalise or ignore these silently)."""
        c = self.final_config_dict
        ratio = c.get("eval_input_ratio")
        if ratio is not None and not (isinstance(ratio, (int, float)) and 0 < ratio < 1):
            self._fail("eval_input_ratio", "must lie strictly between 0 and 1 (the share of an eval bundle shown as "
                       "the partial bundle)", "e.g. 0.5 (the default)")
        split = c.get("bundle_split_ratio")
        if split is not None:
            if (not isinstance(split, (list, tuple)) or len(split) != 3
                    or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0 for x in split)):
                self._fail("bundle_split_ratio", "must be 3 non-negative numbers [train, valid, test]", "e.g. [0.8, 0.1, 0.1]")
            if abs(sum(split) - 1.0) > 1e-6:
                self._fail("bundle_split_ratio", f"sums to {sum(split):g}, not 1 (the shares are not renormalised)",
                           "give shares that add up to 1, e.g. [0.8, 0.1, 0.1]")
        if c.get("bundle_split") not in (None, "auto", "ratio", "file"):
            self._fail("bundle_split", "must be auto, ratio or file", "use 'ratio' (shares in bundle_split_ratio) or "
                       "'file' (a role column in the .inter file)")
        for key in ("seed", "split_seed", "question_seed"):
            v = c.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                self._fail(key, "must be an integer", f"e.g. --{key}=2020")
        k = c.get("n_candidates")
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 2):
            self._fail("n_candidates", "must be an integer >= 2 (one positive and at least one negative)", "e.g. 10")
        stages = c.get("stages")
        zero_shot = isinstance(stages, (list, tuple)) and len(stages) == 0
        epochs = c.get("epochs")
        if not zero_shot and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
            self._fail("epochs", f"must be >= 1 for {self.model}, a model that is fitted to the training data: 0 "
                       "epochs would score an untrained model", "give at least 1 (zero-shot models such as "
                       "LLMZeroShot have no epochs)")
        self._check_device()

    def _check_device(self) -> None:
        """Honour a ``device`` the user gave (RecBole overwrites it) and refuse CUDA where there is none;
        ``use_gpu: False`` keeps the run on the CPU (RecBole 1.2.1 ignores it when picking the device)."""
        import torch

        c = self.final_config_dict
        if "device" in self._user_given:
            text = str(self._given("device"))
            try:
                device = torch.device(text)
            except (RuntimeError, ValueError):
                self._fail_device(text, "is not a torch device", "use cpu, cuda or cuda:<index>")
            if device.type == "cuda":
                if not torch.cuda.is_available():
                    self._fail_device(text, "asks for a GPU but torch.cuda.is_available() is False on this machine "
                                      "(no GPU, or a CPU-only torch build)", "run on a CUDA machine or use --device=cpu")
                if device.index is not None and device.index >= torch.cuda.device_count():
                    self._fail_device(text, f"names GPU {device.index} but {torch.cuda.device_count()} are visible",
                                      "pick an index below that, or set gpu_id")
            elif device.type != "cpu":
                self._fail_device(text, "is not supported", "use cpu, cuda or cuda:<index>")
            c["device"] = device
        elif c.get("use_gpu") is False:
            c["device"] = torch.device("cpu")

    def _given(self, key: str) -> Any:
        for _, values in reversed(self._sources):
            if key in values:
                return values[key]
        return None

    def _fail_device(self, text: str, rule: str, fix: str) -> None:
        raise BundleConfigError(f"config key 'device' (from {self._where('device')}) = {text!r} {rule}; {fix}")


def _text_keys() -> dict[str, bool]:
    """Keys whose default is text (a number given for them on the command line stays text)."""
    out: dict[str, bool] = {}
    for f in [recbole_properties_dir() / "overall.yaml", *sorted(properties_dir().rglob("*.yaml"))]:
        try:
            data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            for k, v in data.items():
                if isinstance(v, str):
                    out[str(k)] = True
    notes = _annotations()
    for k, note in notes.items():
        if _annotated_types(note) == (str,):
            out[k] = True
    return out


_DEFAULT_TEXT_KEYS = _text_keys()
