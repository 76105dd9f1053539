"""Exceptions raised by recbole_bundle: every message names the file/field/key and the fix.

Exit codes, the same for every command line (``run_recbole_bundle.py``, ``python -m recbole_bundle.features``,
``python -m recbole_bundle.studies``, ``python -m recbole_bundle.data.sample``):

* 0: done;
* 2: usage, config or data error: one ``error: ...`` line naming the file / line / key and the fix, no traceback
  (argparse's own usage errors exit 2 as well);
* 1: internal error (a bug): Python's traceback;
* 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys
from typing import Callable

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class BundleError(Exception):
    """Base class of recbole_bundle's user-facing errors."""


class BundleDataError(BundleError, ValueError):
    """Malformed or missing dataset files (names the file, line and how to fix it)."""


class BundleConfigError(BundleError, ValueError):
    """A config key with a bad value or type, or an unknown model / dataset name."""


def cli_main(run: Callable[[], object]) -> int:
    """Run a command line's body with the exit-code convention above; returns the exit code."""
    try:
        run()
    except BundleError as err:
        sys.stderr.write(f"error: {err}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    return EXIT_OK
