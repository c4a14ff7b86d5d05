"""Where handler modules are imported from.

A console script's import path holds its own installation, not the folder it was started
in, so `CONVEYOR_HANDLERS=myapp.jobs conveyor worker` run from an application's folder
would not find `myapp`. Like Celery, RQ and Dramatiq, Conveyor puts the configured
folders (`CONVEYOR_HANDLERS_PATH`, `--path`; the current directory by default) first on
the import path before importing the handler modules, so the application's own packages
win over anything else of the same name.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from conveyor.errors import ConfigError


def put_first_on_import_path(folders: Iterable[str], *, base: str | None = None) -> list[str]:
    """Put `folders` (relative ones taken from `base`, default the current directory) at the
    front of ``sys.path``, in the given order, moving any that were already there; return
    the absolute folders. A folder that does not exist is a configuration error."""
    base = os.getcwd() if base is None else base
    absolute = [os.path.normpath(os.path.join(base, folder)) for folder in folders]
    missing = [folder for folder in absolute if not os.path.isdir(folder)]
    if missing:
        raise ConfigError(
            [f"CONVEYOR_HANDLERS_PATH: {folder!r} is not a folder" for folder in missing]
        )
    for folder in reversed(absolute):
        while folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
    return absolute
