"""Where the project's non-Python resources live (migrations/, templates/)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
TEMPLATES_DIR = PROJECT_ROOT / "templates"
