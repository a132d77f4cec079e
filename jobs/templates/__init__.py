"""Jinja templates of the HTML reports (``pe analyze``, ``pe report``); pages are self-contained and open
offline: inline CSS, images as files next to the page, no external resources."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

TEMPLATE_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                              autoescape=jinja2.select_autoescape(["html", "j2"]),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_template(name: str, **context: Any) -> str:
    """Render template ``name`` (a file in this folder) with ``context``."""
    return _environment().get_template(name).render(**context)
