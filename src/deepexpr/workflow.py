"""Glue for the thin workflow scripts: logging into the rule's log file."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from pathlib import Path
from typing import Iterator

import matplotlib

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def rule_log(log_path: str | None) -> Iterator[logging.Logger]:
    """Route logging, warnings, stdout and stderr of a rule into its log file.

    Errors are written to the log with their message before they propagate, so the
    log says why the rule failed even when the traceback is long. Rule scripts draw figures
    without a display, so matplotlib gets the non-interactive Agg backend (the plot modules
    leave the backend alone, for notebooks).
    """
    matplotlib.use("Agg")
    logger = logging.getLogger("deepexpr")
    if not log_path:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
        yield logger
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        warnings.simplefilter("default")
        try:
            with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
                yield logger
        except Exception as error:
            logger.error("%s: %s", type(error).__name__, error)
            # Snakemake prints the script's stderr; say it there too, in one line.
            print(f"{type(error).__name__}: {error}", file=sys.__stderr__)
            raise
        finally:
            root.removeHandler(handler)
