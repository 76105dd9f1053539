"""Where the plugin's files live: its ``properties/`` yamls and RecBole's own (a leaf module: imports nothing
of the plugin, so config, data and features can all ask it)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path


def properties_dir() -> Path:
    """The plugin's ``properties/`` folder (source checkout / editable install, else package data)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "properties", here / "properties"):
        if (candidate / "overall.yaml").is_file():
            return candidate
    return Path(str(importlib.resources.files("recbole_bundle") / "properties"))


def recbole_properties_dir() -> Path:
    """RecBole's own ``properties/`` folder (overall, model, dataset and quick-start yamls)."""
    return Path(__import__("recbole").__file__).parent / "properties"
