"""PDF rendering: Jinja templates under templates/reports/ → HTML → WeasyPrint, through a closed door.

* The ``url_fetcher`` serves only ecrf's own static files (``ecrf/static``, addressed relative to
  ``STATIC_BASE``) and refuses everything else: no ``file://``, no ``http(s)://`` elsewhere, no
  ``data:``. A report can therefore never read the server's files or call out, whatever a user typed
  into a narrative.
* Text is glyph-safe: a character that neither DejaVu Sans nor Noto Sans CJK SC can draw is written
  as ``[U+XXXX]``. Left to WeasyPrint, a glyph-less character makes it write its own CMap for the font
  and text extraction of that font turns to ``\\x00``-separated garbage (shared/reference/STANDARDS.md
  §7); a visible code is honest and keeps the PDF searchable.
* The templates name the fonts (``"DejaVu Sans", "Noto Sans CJK SC"``): left to fontconfig, Chinese
  would be drawn with the Japanese glyph forms.

The Jinja environment is ecrf's own (not Flask's), so the CLI renders without an application.
"""
import dataclasses
import functools
import logging
import mimetypes
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

import jinja2
from markupsafe import Markup

from ecrf.paths import PACKAGE_DIR, resource

log = logging.getLogger(__name__)

#: Relative URLs in report templates resolve against this; only it is ever fetched.
STATIC_BASE = "https://ecrf.invalid/static/"
STATIC_DIR = PACKAGE_DIR / "static"

#: The fonts the templates use, in order; glyph coverage is read from these files.
FONT_FILES = {
    "DejaVu Sans": ("DejaVuSans.ttf",),
    "Noto Sans CJK SC": ("NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf", "NotoSansCJK-Regular.otf"),
}
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".local/share/fonts")
#: Characters written as they are whatever the fonts say (layout characters). Other format
#: characters (category Cf: joiners, direction marks) are shaped away by HarfBuzz and kept too;
#: a combining mark without a glyph is replaced like any other character.
_ALWAYS = {0x09, 0x0A, 0x0D, 0x20, 0xA0, 0xAD, 0x200B, 0x200C, 0x200D, 0x2028, 0x2029, 0xFEFF}


class RefusedFetch(ValueError):
    """A resource outside ecrf's static files was asked for."""


def _weasyprint():
    # Imported on first use: WeasyPrint loads Pango and HarfBuzz, which pages without PDFs never need.
    import weasyprint

    return weasyprint


@functools.cache
def _fetcher_class():
    weasyprint = _weasyprint()

    class ClosedFetcher(weasyprint.URLFetcher):
        """Serves ``STATIC_BASE<path>`` from ecrf/static and refuses every other URL."""

        def __init__(self, static_dir=STATIC_DIR):
            super().__init__(timeout=1, allowed_protocols=(), allow_redirects=False)
            self.static_dir = Path(static_dir).resolve()
            self.refused = []

        def fetch(self, url, headers=None):
            return self.open_static(url)

        def open_static(self, url):
            if not isinstance(url, str) or not url.startswith(STATIC_BASE):
                self.refused.append(url)
                raise RefusedFetch(f"refused to fetch {str(url)[:200]!r}: "
                                   "reports may use only ecrf's static files")
            relative = unquote(urlsplit(url).path)[len(urlsplit(STATIC_BASE).path):]
            path = (self.static_dir / relative).resolve()
            if not path.is_relative_to(self.static_dir) or not path.is_file():
                self.refused.append(url)
                raise RefusedFetch(f"no static file {relative!r}")
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return weasyprint.urls.URLFetcherResponse(url, body=path.read_bytes(),
                                                      headers={"Content-Type": kind})

    return ClosedFetcher


def closed_fetcher(static_dir=STATIC_DIR):
    """A new closed URL fetcher (it records the URLs it refused in ``.refused``)."""
    return _fetcher_class()(static_dir)


# --- glyph coverage -------------------------------------------------------------------------------

def _find_font(names):
    for folder in FONT_DIRS:
        if not folder.is_dir():
            continue
        for name in names:
            hit = next(iter(sorted(folder.rglob(name))), None)
            if hit is not None:
                return hit
    return None


def _cmap(path, family):
    from fontTools.ttLib import TTCollection, TTFont

    if path.suffix.lower() == ".ttc":
        with TTCollection(str(path), lazy=True) as collection:
            fonts = collection.fonts
            font = next((f for f in fonts if f["name"].getDebugName(1) == family), fonts[0])
            return set(font.getBestCmap() or {})
    with TTFont(str(path), lazy=True) as font:
        return set(font.getBestCmap() or {})


@functools.cache
def covered_codepoints():
    """Code points the report fonts can draw, or None when no report font is installed (then text
    is left alone, and the tests that look for æøå and Chinese in the PDF will say so)."""
    covered, found = set(), False
    for family, names in FONT_FILES.items():
        path = _find_font(names)
        if path is None:
            log.warning("font %r not found: install fonts-dejavu-core and fonts-noto-cjk", family)
            continue
        covered |= _cmap(path, family)
        found = True
    return frozenset(covered) if found else None


def glyph_safe(text):
    """``text`` with each character no report font can draw (and each control character) written
    visibly as ``[U+XXXX]``."""
    covered = covered_codepoints()
    out = []
    for char in text:
        code = ord(char)
        if code in _ALWAYS:
            out.append(char)
        elif unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn") or (
                covered is not None and code not in covered and unicodedata.category(char) != "Cf"):
            out.append(f"[U+{code:04X}]")
        else:
            out.append(char)
    return "".join(out)


def _finalize(value):
    if value is None:
        return ""
    if isinstance(value, str) and not isinstance(value, Markup):
        return glyph_safe(value)
    return value


# --- templates and rendering ----------------------------------------------------------------------

@functools.cache
def environment():
    """The Jinja environment of the report templates: autoescaped, glyph-safe output, strict names."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(resource("templates"))),
                             autoescape=True, finalize=_finalize, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["glyph_safe"] = glyph_safe
    return env


def render_html(template, context):
    return environment().get_template(template).render(**context)


@dataclasses.dataclass(frozen=True)
class RenderedPdf:
    data: bytes
    pages: int


def html_to_pdf(html, fetcher=None):
    """Lay out ``html`` and write the PDF; only ``fetcher`` (a closed one by default) is asked for
    resources."""
    weasyprint = _weasyprint()
    document = weasyprint.HTML(string=html, base_url=STATIC_BASE,
                               url_fetcher=fetcher or closed_fetcher()).render()
    return RenderedPdf(document.write_pdf(), len(document.pages))


def render_pdf(template, context, fetcher=None):
    """Render ``templates/<template>`` with ``context`` to a PDF."""
    return html_to_pdf(render_html(template, context), fetcher)
