"""A site's licensed MedDRA release, imported from its ASCII files into the instance folder.

MedDRA is licensed by ICH/MSSO: ecrf never ships it. ``import_release`` reads the distribution's
``$``-separated ASCII files, refuses anything malformed (naming the file and line), and stores the
coding view (each LLT with its PT and primary SOC) as ``<instance>/meddra/<version>/dictionary.json``.
Files, not tables: a dictionary is reference data, replaced by importing the next version, and
needs no migration.

Layouts used (MedDRA ASCII distribution):
  llt.asc     llt_code$llt_name$pt_code$llt_whoart_code$llt_harts_code$llt_costart_sym$
              llt_icd9_code$llt_icd9cm_code$llt_icd10_code$llt_currency$llt_jart_code$
  mdhier.asc  pt_code$hlt_code$hlgt_code$soc_code$pt_name$hlt_name$hlgt_name$soc_name$soc_abbrev$
              null_field$pt_soc_code$primary_soc_fg$
  meddra_release.asc  version$language$...
The other files must be present and well formed (numeric codes); the hierarchy is taken from
mdhier.asc.
"""
import functools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ecrf.coding import match
from ecrf.errors import Conflict, Invalid, NotFound

FILES = ("llt.asc", "pt.asc", "hlt_pt.asc", "hlt.asc", "hlgt_hlt.asc", "hlgt.asc", "soc_hlgt.asc",
         "soc.asc", "mdhier.asc", "meddra_release.asc")
#: Fewest fields per line (without the trailing ``$``) of the files whose content is used or checked.
MIN_FIELDS = {"llt.asc": 10, "mdhier.asc": 12, "meddra_release.asc": 2, "pt.asc": 2, "hlt.asc": 2,
              "hlgt.asc": 2, "soc.asc": 2, "hlt_pt.asc": 2, "hlgt_hlt.asc": 2, "soc_hlgt.asc": 2}
#: Fields that must be codes (digits), by file: the first field of every file but the release.
_CODE_FIELDS = {"llt.asc": (0, 2), "mdhier.asc": (0, 1, 2, 3, 10), "pt.asc": (0,), "hlt.asc": (0,),
                "hlgt.asc": (0,), "soc.asc": (0,), "hlt_pt.asc": (0, 1), "hlgt_hlt.asc": (0, 1),
                "soc_hlgt.asc": (0, 1)}
_VERSION = re.compile(r"^[0-9]{1,3}\.[0-9]{1,2}$")
_CODE = re.compile(r"^[0-9]{1,12}$")
FORMAT = 1


class BadRelease(Invalid):
    """The folder is not a well-formed MedDRA ASCII release."""


@dataclass(frozen=True)
class LowestLevelTerm:
    llt_code: str
    llt_name: str
    pt_code: str
    pt_name: str
    soc_code: str
    soc_name: str
    current: bool


@dataclass(frozen=True)
class Dictionary:
    version: str
    language: str
    terms: tuple
    _by_code: dict = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self):
        object.__setattr__(self, "_by_code", {t.llt_code: t for t in self.terms})

    def term(self, llt_code):
        found = self._by_code.get(str(llt_code).strip())
        if found is None:
            raise NotFound(f"no LLT {llt_code!r} in MedDRA {self.version}")
        return found

    def search(self, query, limit=20, current_only=True):
        """LLTs matching ``query`` (words of the LLT or PT name, an LLT code, the SOC), best first."""
        entries = [t for t in self.terms if t.current or not current_only]
        return match.search(entries, query, limit,
                            lambda t: (t.llt_name, t.llt_code, (t.pt_name, t.soc_name)))


# --- import -----------------------------------------------------------------------------------------

def _lines(folder, name):
    """(line number, fields) of one file; BadRelease naming the file and line when malformed."""
    path = folder / name
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRelease(f"{name}: not UTF-8 text (byte {exc.start})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.removesuffix("$").split("$")
        if len(fields) < MIN_FIELDS[name]:
            raise BadRelease(f"{name} line {number}: expected at least {MIN_FIELDS[name]} "
                             f"$-separated fields, found {len(fields)}")
        for index in _CODE_FIELDS.get(name, ()):
            if not _CODE.match(fields[index]):
                raise BadRelease(f"{name} line {number}: field {index + 1} must be a numeric code, "
                                 f"not {fields[index]!r}")
        yield number, fields


def read_release(folder):
    """Read and validate the ASCII release in ``folder``; return its Dictionary."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadRelease(f"{folder} is not a folder")
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise BadRelease(f"not a MedDRA ASCII release: missing {', '.join(missing)} in {folder}")
    for name in FILES:
        if name not in ("llt.asc", "mdhier.asc", "meddra_release.asc"):
            for _ in _lines(folder, name):
                pass
    release = list(_lines(folder, "meddra_release.asc"))
    if not release:
        raise BadRelease("meddra_release.asc: empty")
    number, fields = release[0]
    version, language = fields[0].strip(), fields[1].strip()
    if not _VERSION.match(version):
        raise BadRelease(f"meddra_release.asc line {number}: {version!r} is not a version such as 26.1")
    primary = {}
    for number, f in _lines(folder, "mdhier.asc"):
        if f[11] not in ("Y", "N"):
            raise BadRelease(f"mdhier.asc line {number}: primary_soc_fg must be Y or N, not {f[11]!r}")
        if not f[4].strip() or not f[7].strip():
            raise BadRelease(f"mdhier.asc line {number}: the PT and SOC names are required")
        if f[11] == "Y":
            if f[0] in primary:
                raise BadRelease(f"mdhier.asc line {number}: PT {f[0]} has a second primary SOC")
            primary[f[0]] = (f[4].strip(), f[3], f[7].strip())
    terms, seen = [], set()
    for number, f in _lines(folder, "llt.asc"):
        code, name, pt_code, currency = f[0], f[1].strip(), f[2], f[9]
        if not name:
            raise BadRelease(f"llt.asc line {number}: the LLT name is empty")
        if currency not in ("Y", "N"):
            raise BadRelease(f"llt.asc line {number}: llt_currency must be Y or N, not {currency!r}")
        if code in seen:
            raise BadRelease(f"llt.asc line {number}: LLT {code} appears twice")
        if pt_code not in primary:
            raise BadRelease(f"llt.asc line {number}: PT {pt_code} has no primary path in mdhier.asc")
        seen.add(code)
        pt_name, soc_code, soc_name = primary[pt_code]
        terms.append(LowestLevelTerm(code, name, pt_code, pt_name, soc_code, soc_name, currency == "Y"))
    if not terms:
        raise BadRelease("llt.asc: no terms")
    return Dictionary(version, language, tuple(terms))


def _folder(instance_path):
    return Path(instance_path) / "meddra"


def import_release(instance_path, folder):
    """Validate the release in ``folder`` and store it under the instance folder; return it.
    A version is imported once (Conflict if it is already there)."""
    dictionary = read_release(folder)
    target = _folder(instance_path) / dictionary.version
    path = target / "dictionary.json"
    if path.exists():
        raise Conflict(f"MedDRA {dictionary.version} is already imported ({path})")
    target.mkdir(parents=True, exist_ok=True)
    document = {"format": FORMAT, "version": dictionary.version, "language": dictionary.language,
                "terms": [[t.llt_code, t.llt_name, t.pt_code, t.pt_name, t.soc_code, t.soc_name,
                           t.current] for t in dictionary.terms]}
    partial = target / "dictionary.json.partial"
    partial.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    os.replace(partial, path)  # never a half-written dictionary under the final name
    return dictionary


# --- use --------------------------------------------------------------------------------------------

def versions(instance_path):
    """Imported versions, oldest first."""
    root = _folder(instance_path)
    if not root.is_dir():
        return []
    found = [p.name for p in root.iterdir() if _VERSION.match(p.name) and (p / "dictionary.json").is_file()]
    return sorted(found, key=lambda v: tuple(int(part) for part in v.split(".")))


def load(instance_path, version=None):
    """The imported dictionary of ``version`` (the newest when omitted)."""
    available = versions(instance_path)
    if version is None:
        if not available:
            raise NotFound("no MedDRA release is imported (ecrf coding import-meddra DIR)")
        version = available[-1]
    if version not in available:
        raise NotFound(f"MedDRA {version} is not imported (imported: {', '.join(available) or 'none'})")
    path = _folder(instance_path) / version / "dictionary.json"
    return _load_file(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _load_file(path, _mtime):
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        if document.get("format") != FORMAT:
            raise ValueError("unknown format")
        terms = tuple(LowestLevelTerm(str(c), str(n), str(p), str(pn), str(s), str(sn), bool(cur))
                      for c, n, p, pn, s, sn, cur in document["terms"])
        return Dictionary(str(document["version"]), str(document["language"]), terms)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadRelease(f"{path} is damaged ({exc}); import the release again") from None


def search(instance_path, query, limit=20, version=None):
    return load(instance_path, version).search(query, limit)
