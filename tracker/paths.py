"""Where the project's non-Python resources live (migrations/, templates/, the example config).

In a checkout (or an editable install) they sit beside the package; a wheel installs them as
data files under `<scheme data>/share/tracker` (see pyproject.toml), which is the venv's prefix,
the user base for `pip install --user`, or /usr/local for a system install.
"""

from __future__ import annotations

import site
import sys
import sysconfig
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def _installed_roots() -> list[Path]:
    roots = [Path(sys.prefix) / "share" / "tracker"]
    for scheme in sysconfig.get_scheme_names():
        try:
            data = sysconfig.get_path("data", scheme)
        except KeyError:
            continue
        roots.append(Path(data) / "share" / "tracker")
    user_base = site.getuserbase()
    if user_base:
        roots.append(Path(user_base) / "share" / "tracker")
    return roots


def _resource_root() -> Path:
    for root in [_CHECKOUT, *_installed_roots()]:
        if (root / "migrations" / "env.py").is_file():
            return root
    # Nothing found: keep the checkout path so the error names a concrete place.
    return _CHECKOUT


PROJECT_ROOT = _resource_root()
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
TEMPLATES_DIR = PROJECT_ROOT / "templates"
EXAMPLE_CONFIG = PROJECT_ROOT / "config.example.toml"
