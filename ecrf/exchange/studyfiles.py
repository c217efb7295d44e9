"""What the definition imports share: the result of a conversion, its warnings, safe label text,
keys, and writing a study folder that ``ecrf study validate`` accepts (or nothing at all)."""
import csv
import dataclasses
import html
import html.parser
import io
import json
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path

from ecrf.errors import Invalid

KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
FORM_KEY = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
STUDY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
#: Longest title the form meta-schema accepts for a label, a section or a code.
MAX_TEXT = 500


class ConversionRefused(Invalid):
    """The input cannot be converted; ``errors`` lists (where, message), each naming the field."""

    def __init__(self, problems):
        super().__init__("; ".join(f"{where}: {message}" for where, message in problems), problems)


@dataclasses.dataclass
class Conversion:
    """A converted study: ``study.json``, the forms (id -> schema) and the warnings, each
    (where, message) with ``where`` naming the form and field (``demographics/bmi``)."""

    study: dict
    forms: dict
    warnings: list = dataclasses.field(default_factory=list)

    def warn(self, where, message):
        self.warnings.append((where, message))


class _Text(html.parser.HTMLParser):
    """Collects the text of an HTML fragment; scripts and styles are dropped, not shown."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4"):
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def plain_text(value, limit=MAX_TEXT):
    """``value`` (text that may hold HTML) as plain text: tags removed, entities decoded, control
    characters dropped, whitespace collapsed, at most ``limit`` characters (an ellipsis shows a cut)."""
    if not value:
        return ""
    parser = _Text()
    parser.feed(value)
    parser.close()
    text = html.unescape("".join(parser.parts))
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\t\n")
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "\u2026"


def make_key(text, taken, fallback, limit=63):
    """A key (``^[a-z][a-z0-9_]*$``, at most ``limit`` characters) made from ``text``, not in
    ``taken`` (which it joins)."""
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    if not base or not base[0].isalpha():
        base = f"{fallback}_{base}".strip("_") if base else fallback
    base = base[:limit].rstrip("_")
    key, n = base, 2
    while key in taken:
        suffix = f"_{n}"
        key, n = base[:limit - len(suffix)] + suffix, n + 1
    taken.add(key)
    return key


def read_text(path, encoding=None, what="file"):
    """The text of ``path``: UTF-8 with or without a byte-order mark, or ``encoding`` when given;
    anything else is refused with a message that says how to fix it."""
    data = Path(path).read_bytes()
    try:
        return data.decode(encoding or "utf-8-sig")
    except LookupError:
        raise Invalid(f"unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        raise Invalid(f"{path}: the {what} is not {encoding or 'UTF-8'} (byte {exc.start + 1} cannot be "
                      f"read); save it as UTF-8, or name its encoding with --encoding") from None


def read_csv(path, encoding=None, what="CSV file"):
    """(header, rows as lists) of a CSV file; a CSV without a header is refused."""
    return parse_csv(read_text(path, encoding, what), path, what)


def parse_csv(text, name="the file", what="CSV file"):
    """(header, rows as lists) of CSV text (a leading byte-order mark is dropped)."""
    try:
        rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True))
    except csv.Error as exc:
        raise Invalid(f"{name}: not a readable CSV file ({exc})") from None
    if not rows:
        raise Invalid(f"{name}: the {what} is empty")
    return [h.strip() for h in rows[0]], rows[1:]


def write_study(conversion, output, *, force=False, max_bytes=None):
    """Write the converted study to the folder ``output`` (whose name is the study id), after
    checking it exactly as ``ecrf study validate`` does; return the loaded study.

    Nothing is written when the result would not validate, or when ``output`` already holds a study
    and ``force`` is not given (then only its ``.json`` files are replaced).
    """
    from ecrf.definitions import StudyInvalid, load_study
    from ecrf.definitions.loader import MAX_FILE_BYTES

    output = Path(output)
    study_id = conversion.study["id"]
    if output.name != study_id:
        raise Invalid(f"the output folder must be named after the study id: {output.parent / study_id}, "
                      f"not {output}")
    if output.is_file():
        raise Invalid(f"{output} is a file, not a folder")
    existing = sorted(output.glob("*.json")) if output.is_dir() else []
    if existing and not force:
        raise Invalid(f"{output} already holds a study ({len(existing)} .json files); "
                      "give --force to replace them")
    output.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".ecrf-import-", dir=output.parent))
    try:
        folder = scratch / study_id
        folder.mkdir()
        files = {"study.json": conversion.study} | {f"{k}.json": v for k, v in conversion.forms.items()}
        for name, doc in files.items():
            (folder / name).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        try:
            loaded = load_study(folder, max_bytes=max_bytes or MAX_FILE_BYTES)
        except StudyInvalid as exc:
            raise ConversionRefused([(str(e.file).split("/")[-1] + (f": {e.pointer}" if e.pointer else ""),
                                      f"the converted study does not validate: {e.message}")
                                     for e in exc.errors]) from None
        output.mkdir(exist_ok=True)
        for old in existing:
            old.unlink()
        for name in files:
            shutil.move(str(folder / name), output / name)
        return loaded
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
