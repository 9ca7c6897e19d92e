"""The search page: static files (index.html, app.js, style.css; no build step, nothing
fetched from elsewhere) that serve/app.py serves at /ui, read once when it is imported.
The page is public (serve/auth.py lets it through without a key); its API calls carry one."""

from __future__ import annotations

from pathlib import Path

CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}
PAGE = "index.html"
# The page loads its own files and calls its own service, nothing else.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _paths() -> list[Path]:
    here = Path(__file__).resolve().parent
    return [path for path in sorted(here.iterdir()) if path.suffix in CONTENT_TYPES]


def files() -> dict[str, tuple[bytes, str]]:
    """{file name: (content, content type)} of the page's files."""
    return {path.name: (path.read_bytes(), CONTENT_TYPES[path.suffix]) for path in _paths()}


NAMES = frozenset(path.name for path in _paths())  # what /ui/{file} serves; the API-key middleware opens these
