"""Tiny HTML building blocks for a self-contained page: escaped text, tables, embedded images.

No template engine: a report is a handful of sections, and string building with ``html.escape``
on every piece of data keeps the page dependency-free and safe to open from disk.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from pathlib import Path

MIME = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 1rem 2rem; color: #1d1d1f; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.85rem; display: block; max-width: 100%;
        overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: right; white-space: nowrap; }
caption { text-align: left; font-weight: 600; padding: 0.2rem 0; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f6; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #555; }
pre { background: #f7f7f9; padding: 0.6rem; overflow-x: auto; font-size: 0.8rem; }
.warning { background: #fff4e5; border-left: 4px solid #f0a020; padding: 0.6rem 1rem; }
.note { color: #666; font-size: 0.85rem; }
.gallery { display: flex; flex-wrap: wrap; gap: 0.8rem; }
.gallery figure { width: 200px; margin: 0; } .gallery img { width: 200px; height: auto; }
nav a { margin-right: 0.8rem; font-size: 0.9rem; }
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def data_uri(path: str | Path) -> str:
    """The file's bytes as a ``data:`` URI, so the page needs no other file."""
    path = Path(path)
    mime = MIME.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"cannot embed {path}: not an image type the report knows ({sorted(MIME)})")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def figure(path: str | Path, caption: str, alt: str | None = None) -> str:
    return (
        f'<figure><img src="{data_uri(path)}" alt="{esc(alt or caption)}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


#: the most columns one rendered table has: a wider one is split into parts that repeat its key
#: columns, so every column is on screen (a scrolled-off ``*_beats_random`` or accuracy went unseen)
MAX_COLUMNS = 8


def table(
    header: Sequence[object],
    rows: Iterable[Sequence[object]],
    caption: str | None = None,
    keys: int = 1,
) -> str:
    """An HTML table; with more than :data:`MAX_COLUMNS` columns, several tables of at most that
    many, each repeating the first ``keys`` columns (what names a row) and captioned with the
    columns it shows."""
    header, rows = list(header), [list(r) for r in rows]
    keys = max(0, min(keys, len(header) - 1, MAX_COLUMNS - 1))
    per_part = MAX_COLUMNS - keys
    rest = list(range(keys, len(header)))
    if len(header) <= MAX_COLUMNS:
        return _one_table(header, rows, caption)
    parts = [rest[i : i + per_part] for i in range(0, len(rest), per_part)]
    out = ""
    for k, part in enumerate(parts, 1):
        cols = [*range(keys), *part]
        shown = f"columns {part[0] + 1}-{part[-1] + 1} of {len(header)}, part {k} of {len(parts)}"
        cap = f"{caption} ({shown})" if caption else shown
        out += _one_table(
            [header[c] for c in cols], [[r[c] if c < len(r) else "" for c in cols] for r in rows], cap
        )
    return out


def _one_table(header: Sequence[object], rows: Iterable[Sequence[object]], caption: str | None) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def paragraph(text: str, cls: str | None = None) -> str:
    c = f' class="{esc(cls)}"' if cls else ""
    return f"<p{c}>{esc(text)}</p>"


#: in every page's head: how ``report`` recognises a file it wrote (and may replace)
GENERATOR = '<meta name="generator" content="chestxai report">'


def page(title: str, sections: list[tuple[str, str, str]], header: str = "") -> str:
    """A whole document: ``sections`` are ``(anchor, title, body html)``, linked from a nav bar."""
    nav = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t, _ in sections)
    body = "".join(section(a, t, b) for a, t, b in sections)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{GENERATOR}'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'  # no favicon request: the page loads nothing else
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><h1>{esc(title)}</h1>{header}<nav>{nav}</nav>{body}</body></html>"
    )
