"""Exceptions raised by recbole_bundle: every message names the file/field/key and the fix."""


class BundleError(Exception):
    """Base class of recbole_bundle's user-facing errors."""


class BundleDataError(BundleError, ValueError):
    """Malformed or missing dataset files (names the file, line and how to fix it)."""


class BundleConfigError(BundleError, ValueError):
    """A config key with a bad value or type, or an unknown model / dataset name."""
