"""Typed model options read from a RecBole config and checked ONCE at construction (the base of every model's
options dataclass: ``BundleMLLMOptions``, ``CLHEOptions``).

A subclass is a frozen dataclass whose fields are yaml keys with their types (``Literal`` choices, ``tuple[...]``,
``bool``, ``int``, ``float``, ``str``); :meth:`ModelOptions.from_config` reads each key, coerces it or raises one
:class:`BundleConfigError` naming the key, then runs the subclass's ``_check_ranges``.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Literal, get_args, get_origin, get_type_hints

from recbole_bundle.errors import BundleConfigError


class ModelOptions:
    """Mixin for a frozen dataclass of model options (see the module docstring)."""

    defaults = "properties/model/<Model>.yaml"  # where the keys are documented (named in messages)

    @classmethod
    def from_config(cls, config):
        """The options of ``config``, each checked; the first bad key raises one BundleConfigError."""
        hints = get_type_hints(cls)
        opts = cls(**{f.name: _coerce(f.name, hints[f.name], config[f.name]) for f in fields(cls)})
        opts._check_ranges()
        return opts

    def _check_ranges(self) -> None:
        """Subclasses check value ranges here (with :meth:`_fail`)."""

    def _fail(self, key: str, rule: str) -> None:
        raise BundleConfigError(f"config key '{key}' {rule}, got {getattr(self, key)!r} (defaults: {self.defaults})")


def _coerce(key: str, annotation, raw):
    """``raw`` as ``annotation`` (a Literal, tuple[...], bool, int, float or str), or a message naming the key."""
    ann = annotation
    origin = get_origin(ann)
    if origin is tuple:
        (item, _) = get_args(ann)
        if raw is None:
            raw = []
        if isinstance(raw, str) or not isinstance(raw, (list, tuple)):
            raise BundleConfigError(f"config key '{key}' must be a list, got {raw!r}")
        return tuple(_coerce(key, item, v) for v in raw)
    if origin is Literal:
        allowed = get_args(ann)
        if raw not in allowed:
            raise BundleConfigError(f"config key '{key}' must be one of {', '.join(map(str, allowed))}, got {raw!r}")
        return raw
    if ann is bool:
        if not isinstance(raw, bool):
            raise BundleConfigError(f"config key '{key}' must be True or False, got {raw!r}")
        return raw
    if ann is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise BundleConfigError(f"config key '{key}' must be an integer, got {raw!r}")
        return raw
    if ann is float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise BundleConfigError(f"config key '{key}' must be a number, got {raw!r}")
        return float(raw)
    if not isinstance(raw, str):
        raise BundleConfigError(f"config key '{key}' must be text, got {raw!r}")
    return raw
