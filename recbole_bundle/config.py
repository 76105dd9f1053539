"""BundleConfig: RecBole's Config plus the plugin's properties, explicit command-line args and type checks.

Order of precedence (later wins), as in RecBole:
RecBole's internal yamls < plugin ``properties/overall.yaml`` < ``properties/model/<Model>.yaml``
< ``properties/dataset/<dataset>.yaml`` < user ``config_file_list`` < ``config_dict`` < ``cmd_args``.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml
from recbole.config import Config

from recbole_bundle.errors import BundleConfigError


def properties_dir() -> Path:
    """The plugin's ``properties/`` folder (source checkout / editable install, else package data)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "properties", here / "properties"):
        if (candidate / "overall.yaml").is_file():
            return candidate
    return Path(str(importlib.resources.files("recbole_bundle") / "properties"))


def plugin_config_files(model_class: type, dataset: str) -> list[str]:
    """The plugin yaml files that apply to (model, dataset), lowest precedence first.

    A model's yaml is layered over its base classes' yamls, so a variant (e.g. ``LLMZeroShot`` over
    ``BundleMLLM``) writes only the keys it changes.
    """
    root = properties_dir()
    models = [root / "model" / f"{c.__name__}.yaml" for c in reversed(model_class.__mro__)]
    files = [root / "overall.yaml", *models, root / "dataset" / f"{dataset}.yaml"]
    return [str(f) for f in files if f.is_file()]


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
    return isinstance(value, type(default))


class BundleConfig(Config):
    """RecBole ``Config`` for the plugin.

    Args:
        model: model name (looked up in recbole_bundle first, then RecBole) or class.
        dataset: dataset name.
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
        from recbole_bundle.utils import get_model

        model_class = get_model(model) if isinstance(model, str) else model
        self._cmd_args = list(cmd_args or [])
        self._plugin_files = plugin_config_files(model_class, dataset)
        for f in list(config_file_list or []):
            if not Path(f).is_file():
                raise BundleConfigError(f"config file '{f}' does not exist; check the path given to --config_files")
        files = self._plugin_files + list(config_file_list or [])
        try:
            super().__init__(model_class, dataset, files, config_dict)
        except yaml.YAMLError as e:
            raise BundleConfigError(f"a config file is not valid YAML: {e}") from e
        self._check_types()

    def _load_cmd_line(self) -> dict:
        parsed, _ = parse_cmd_args(self._cmd_args)
        return self._convert_config_dict(parsed)

    def compatibility_settings(self) -> None:
        from recbole_bundle.compat import patch_numpy_aliases

        patch_numpy_aliases()
        super().compatibility_settings()

    def _defaults(self) -> dict[str, tuple[Any, str]]:
        """Default value and source file of every key a yaml (RecBole's or the plugin's) declares."""
        defaults: dict[str, tuple[Any, str]] = {}
        recbole_root = Path(__import__("recbole").__file__).parent / "properties"
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
        """Stop with a message naming the key when a user value has the wrong type."""
        sources = [("command line", self.cmd_config_dict), ("config_dict", self.variable_config_dict),
                   ("config files", self.file_config_dict)]
        for key, (default, origin) in self._defaults().items():
            for where, given in sources:
                if key in given and not _compatible(default, given[key]):
                    raise BundleConfigError(
                        f"config key '{key}' (from {where}) must be {_type_name(default)} like its default "
                        f"{default!r} in {origin}, got {_type_name(given[key])} {given[key]!r}"
                    )
