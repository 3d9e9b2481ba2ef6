"""The ``tracker`` command's entry point: imports the CLI with the garbage collector paused.

Importing the CLI (SQLAlchemy, typer, the models) allocates a few hundred thousand objects, and
the collector's sweeps over them cost an interactive command such as ``tracker plan`` a tenth
of its run time. They live for the whole process, so they are frozen out of later sweeps
instead; long runs (``sync``) keep the collector for everything they allocate.
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    try:
        from tracker.cli import main as cli_main
    finally:
        gc.freeze()
        gc.enable()
    cli_main()
