"""The one place a Jinja2 environment is made (house rule: jinja2 is imported only in report/).

Templates are looked up in the user's directory first (config ``[templates] dir``), then in the
built-in ``templates/``, so a user can override one template without copying the rest.
Undefined variables are errors (StrictUndefined): a typo in an override must fail the run, not
silently print an empty string into a mail sent to a public list.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from tracker.errors import ConfigError, TrackerError
from tracker.paths import TEMPLATES_DIR


class TemplateError(ConfigError):
    """A template is missing or broken (exit code 2); the message names the template file."""

    def __init__(self, message: str) -> None:
        TrackerError.__init__(self, message)
        self.path = None
        self.key = "templates.dir"


class Renderer:
    """Renders named templates; every Jinja2 failure becomes a ConfigError naming the template."""

    def __init__(self, user_dir: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if user_dir is not None:
            if not user_dir.is_dir():
                raise ConfigError(
                    f"templates directory {user_dir} does not exist", key="templates.dir"
                )
            loaders.append(jinja2.FileSystemLoader(str(user_dir)))
        loaders.append(jinja2.FileSystemLoader(str(TEMPLATES_DIR)))
        self.user_dir = user_dir
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            # HTML pages escape every value (mail-derived text included); mails are plain text.
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html.j2", "svg.j2"), default_for_string=False
            ),
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["short"] = short_sha

    def _where(self, name: str) -> str:
        """The file a template name resolves to, so the message points at the right one."""
        if self.user_dir is not None and (self.user_dir / name).is_file():
            return str(self.user_dir / name)
        return str(TEMPLATES_DIR / name)

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        try:
            return self.env.get_template(name).render(**context)
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"template {exc.name} not found") from None
        except jinja2.TemplateSyntaxError as exc:
            where = exc.filename or self._where(exc.name or name)
            raise TemplateError(f"template {where} line {exc.lineno}: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise TemplateError(f"template {self._where(name)}: {exc}") from None


def short_sha(value: object, length: int = 12) -> str:
    return str(value or "")[:length]
