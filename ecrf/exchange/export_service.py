"""The one export service: who may export what (the permission table and the one blinding check),
one consistent database snapshot, the records streamed in a fixed order, output written beside its
target and moved into place only when complete, and the audit event of every finished export.

Every format (``export_csv``, ``export_odm``, ``export_datasetjson``, ``export_stats``) reads through
``iter_records`` inside ``snapshot`` and finishes with ``record_export``; the CLI, the page and the
API call ``run_export``.
"""
import contextlib
import dataclasses
import datetime as dt
import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Engine

from audit import Action, append
from ecrf.auth import permissions
from ecrf.db import write_transaction
from ecrf.errors import Conflict, EcrfError, Invalid, NotFound
from ecrf.models import FormRecord, FormVersion, Site, Subject, SubjectVisit
from ecrf.randomization import can_see_arm
from ecrf.studies import definition, get_site, get_study

#: Format name -> (module, what it writes: "dir" or "file").
FORMATS = {"csv": "dir", "csv-long": "dir", "odm": "file", "dataset-json": "dir", "ndjson": "dir",
           "dta": "dir", "sav": "dir", "xpt": "dir"}
#: Rows fetched per round trip while streaming.
BATCH = 1000


class ExportFailed(EcrfError):
    """Writing the export failed (disk full, no permission): the partial output is removed and no
    export is recorded."""

    status = 507


@dataclasses.dataclass(frozen=True)
class ExportScope:
    """What one export may read: a study, some of its sites and forms, arms or not."""

    study: object                 # the ORM Study
    spec: object                  # its loader Study (current version)
    #: Site ids (database ids) to export; None: every site.
    site_ids: frozenset | None
    site_keys: tuple              # the keys of the chosen sites ((): every site)
    forms: tuple                  # form ids, in the study's order
    #: Whether subjects' arms are exported (``can_see_arm``); a blinded export never holds one.
    arm_visible: bool
    #: The role that allowed the export (None for the operator at the command line).
    role: str | None = None


def _forms(spec, forms):
    known = list(spec.forms)
    for form_id in forms:
        if form_id not in spec.forms:
            raise NotFound(f"no form {form_id!r} in study {spec.id!r}")
    return tuple(f for f in known if f in forms) if forms else tuple(known)


def _sites(session, study, site_keys, allowed_ids):
    """Database ids and keys of the chosen sites; NotFound for an unknown one or one not allowed."""
    ids, keys = set(), []
    for key in site_keys:
        site = get_site(session, study, key)
        if allowed_ids is not None and site.id not in allowed_ids:
            raise permissions.NotVisible(f"no site {key!r} in study {study.key!r}")
        ids.add(site.id)
        keys.append(site.key)
    if not site_keys:
        return allowed_ids, ()
    return frozenset(ids), tuple(sorted(keys))


def scope_for(session, user, study_key, sites=(), forms=()):
    """A user's export scope: the permission table's ``export`` (404 without a role in the study,
    403 for a role that may not export), limited to the sites the user's grants cover, with arms
    only when ``can_see_arm`` says so."""
    study = get_study(session, study_key)
    role = permissions.require(session, user, "export", study)
    allowed = permissions.visible_site_ids(session, user, "export", study)
    site_ids, site_keys = _sites(session, study, sites, allowed)
    if allowed is not None and not sites:
        site_keys = tuple(sorted(session.scalars(select(Site.key).where(Site.id.in_(allowed or [-1])))))
    spec = definition(study)
    return ExportScope(study, spec, None if site_ids is None else frozenset(site_ids), site_keys,
                       _forms(spec, forms), can_see_arm(session, user, study), role)


def operator_scope(session, study_key, sites=(), forms=(), unblinded=False):
    """The operator's scope at the command line: every site; arms in an open-label study (as
    ``can_see_arm`` answers for anyone without a role among the unblinded) or when asked for
    (``--unblinded``, which the manifest and the audit event record)."""
    study = get_study(session, study_key)
    site_ids, site_keys = _sites(session, study, sites, None)
    spec = definition(study)
    return ExportScope(study, spec, site_ids, site_keys, _forms(spec, forms),
                       unblinded or can_see_arm(session, "operator", study))


# --- one snapshot ------------------------------------------------------------------------------------

@contextlib.contextmanager
def snapshot(session):
    """Read everything inside one transaction: REPEATABLE READ on PostgreSQL (one snapshot for every
    statement), one ``BEGIN`` on SQLite (WAL readers keep the snapshot of their first read). A save
    committed during the export is not seen, so tables never mix old and new rows."""
    if session.in_transaction():
        session.rollback()
    bind = session.get_bind()
    options = {}
    if bind.dialect.name == "postgresql" and isinstance(bind, Engine):
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    with session.begin():
        session.connection(execution_options=options)
        yield session


# --- reading -------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RecordRow:
    """One stored form record, with the keys an export needs."""

    subject: str
    site: str
    visit: str                   # "" for a log form's entries
    visit_date: dt.date | None
    form: str
    record: int                  # 1, or the log entry number
    form_version: str
    status: str
    data: dict
    missing: dict
    record_id: int

    def keys(self):
        return [self.subject, self.site, self.visit, self.visit_date.isoformat() if self.visit_date else None,
                self.record, self.form_version, self.status]


def _subject_filter(scope):
    conditions = [Subject.study_id == scope.study.id]
    if scope.site_ids is not None:
        conditions.append(Subject.site_id.in_(scope.site_ids or [-1]))
    return conditions


def visit_order(spec):
    return {v.id: i for i, v in enumerate(spec.visits)}


def iter_records(session, scope, forms=None):
    """The scope's form records of ``forms`` (default: all chosen), ordered by subject, visit (in
    schedule order; unscheduled visits, then logs, after), form (in the study's order) and entry;
    streamed in batches, never all in memory."""
    forms = tuple(forms or scope.forms)
    order = visit_order(scope.spec)
    form_order = {f: i for i, f in enumerate(scope.spec.forms)}
    visit_rank = case(order, value=FormRecord.visit_key, else_=len(order)) if order else 0
    form_rank = case(form_order, value=FormRecord.form_key, else_=len(form_order))
    query = (select(Subject.key, Site.key, FormRecord.visit_key, SubjectVisit.visit_date, FormRecord.form_key,
                    FormRecord.seq, FormVersion.content_hash, FormRecord.status, FormRecord.data,
                    FormRecord.missing, FormRecord.id)
             .join(Subject, Subject.id == FormRecord.subject_id)
             .join(Site, Site.id == Subject.site_id)
             .join(FormVersion, FormVersion.id == FormRecord.form_version_id)
             .outerjoin(SubjectVisit, and_(SubjectVisit.subject_id == FormRecord.subject_id,
                                           SubjectVisit.visit_key == FormRecord.visit_key))
             .where(*_subject_filter(scope), FormRecord.form_key.in_(forms))
             .order_by(Subject.key, visit_rank, FormRecord.visit_key, form_rank, FormRecord.seq))
    result = session.execute(query.execution_options(yield_per=BATCH))
    try:
        for row in result:
            yield RecordRow(row[0], row[1], row[2], row[3], row[4], row[5], f"{row[4]}@{row[6][:12]}",
                            row[7], row[8] or {}, row[9] or {}, row[10])
    finally:
        result.close()


def count_records(session, scope):
    """How many form records the scope holds (for a progress bar's length)."""
    return session.scalar(select(func.count()).select_from(FormRecord)
                          .join(Subject, Subject.id == FormRecord.subject_id)
                          .where(*_subject_filter(scope), FormRecord.form_key.in_(scope.forms)))


def iter_subjects(session, scope):
    """(subject, site, state, arm) of the scope's subjects; the arm only when the scope sees arms."""
    arm = Subject.arm if scope.arm_visible else None
    columns = [Subject.key, Site.key, Subject.state] + ([arm] if arm is not None else [])
    query = (select(*columns).join(Site, Site.id == Subject.site_id).where(*_subject_filter(scope))
             .order_by(Subject.key))
    result = session.execute(query.execution_options(yield_per=BATCH))
    try:
        for row in result:
            yield tuple(row) if scope.arm_visible else (*row, None)
    finally:
        result.close()


def form_versions(session, scope, form):
    """Labels of the form versions the scope's records of ``form`` were saved against."""
    hashes = session.scalars(select(FormVersion.content_hash).distinct()
                             .join(FormRecord, FormRecord.form_version_id == FormVersion.id)
                             .join(Subject, Subject.id == FormRecord.subject_id)
                             .where(*_subject_filter(scope), FormRecord.form_key == form))
    return sorted(f"{form}@{h[:12]}" for h in hashes)


# --- output that appears whole or not at all ---------------------------------------------------------

def check_target(path, force, kind):
    """Refuse an output that exists and is not empty, unless ``force``."""
    path = Path(path)
    if kind == "dir":
        if path.exists() and not path.is_dir():
            raise Conflict(f"{path} exists and is not a folder")
        if path.is_dir() and any(path.iterdir()) and not force:
            raise Conflict(f"{path} exists and is not empty; use --force to replace it")
    elif path.exists() and not force and (path.is_dir() or path.stat().st_size):
        raise Conflict(f"{path} exists; use --force to replace it")


@contextlib.contextmanager
def staged_output(path, kind, force=False):
    """A temporary folder or file beside ``path``, moved onto ``path`` when the block finishes; on any
    error it is removed (a write error becomes ExportFailed naming the cause)."""
    path = Path(path)
    check_target(path, force, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "dir":
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    else:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        os.close(handle)
        staging = Path(name)
    try:
        yield staging
        if kind == "dir":
            if path.exists():
                old = path.with_name(f".{path.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                path.rename(old)
                staging.rename(path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                staging.rename(path)
        else:
            os.replace(staging, path)
    except OSError as exc:
        raise ExportFailed(f"could not write the export to {path}: {_why(exc)}; the partial output "
                           "was removed and nothing was recorded as exported") from None
    finally:
        if kind == "dir":
            shutil.rmtree(staging, ignore_errors=True)
        else:
            staging.unlink(missing_ok=True)


def _why(exc):
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "the disk is full (or the file size limit was reached)"
    return exc.strerror or str(exc)


class HashingWriter(io.RawIOBase):
    """A binary file wrapper that counts bytes and computes the SHA-256 of what is written."""

    def __init__(self, raw):
        super().__init__()
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha256.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def writable(self):
        return True

    def flush(self):
        if not self.closed:
            self.raw.flush()


class FolderSink:
    """Where a folder export's files go: files in ``folder`` (the CLI's staging folder). The web
    streams the same writers into a ZIP instead (``export_stream.ZipSink``, the same methods)."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def open(self, name):
        """A binary file for the export's file ``name``; closing it finishes the file."""
        return (self.folder / name).open("wb")

    @contextlib.contextmanager
    def local_path(self, name):
        """A path on disk to write ``name`` to (for libraries that write only to a path)."""
        yield self.folder / name

    def write_manifest(self, document):
        """The manifest, written last."""
        with self.open("manifest.json") as out:
            out.write(manifest_bytes(document))


class FileSink:
    """Where a one-file export (ODM) goes: ``path``, named ``name`` in the manifest."""

    def __init__(self, path, name):
        self.path, self.name = Path(path), name

    def open(self, _name=None):
        return self.path.open("wb")


def manifest_bytes(document):
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- the manifest and the audit event ----------------------------------------------------------------

def manifest(scope, fmt, files, rows, actor, **extra):
    """The manifest of an export: scope, blinding, row counts and each file's SHA-256."""
    from importlib.metadata import version

    return {
        "study": scope.study.key, "study_version": scope.study.current.number,
        "study_content_hash": scope.spec.hash, "format": fmt,
        "created_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "created_by": actor.name, "role": scope.role, "ecrf_version": version("ecrf"),
        "sites": list(scope.site_keys) or "all", "forms": list(scope.forms),
        "blinding": ("unblinded: subjects' arms are included" if scope.arm_visible
                     else "blinded: no arm is included"),
        "rows": rows, "files": files, **extra,
    }


def manifest_hash(document):
    from ecrf.definitions.model import content_hash

    return content_hash(document)


def record_export(session, actor, scope, fmt, rows, digest):
    """The audit event of a finished export: who, scope, format, row counts, hash of the manifest."""
    described = {"format": fmt, "sites": list(scope.site_keys) or "all", "forms": list(scope.forms),
                 "rows": rows, "manifest_sha256": digest, "arms": "included" if scope.arm_visible else "blinded"}
    total = sum(rows.values())
    with write_transaction(session):
        append(session.connection(), actor.with_role(scope.role or actor.role).event(
            Action.EXPORT, study=scope.study.key, field="/data", new=described,
            reason=f"data export ({fmt}, {total} rows)"))


@dataclasses.dataclass(frozen=True)
class ExportResult:
    format: str
    path: Path
    rows: dict
    manifest_sha256: str


def run_export(session, actor, scope, fmt, output, *, force=False, progress=None, **options):
    """Write ``scope`` as ``fmt`` to ``output`` (a folder, or a file for ODM), then record it.

    The output is staged beside ``output`` and moved in place only when complete; a write error
    removes it and records nothing (ExportFailed)."""
    writer = writer_for(fmt)
    kind = FORMATS[fmt]
    with staged_output(output, kind, force) as staging:
        sink = FolderSink(staging) if kind == "dir" else FileSink(staging, Path(output).name)
        with snapshot(session):
            document = writer(session, scope, sink, actor=actor, fmt=fmt, progress=progress, **options)
    digest = manifest_hash(document)
    record_export(session, actor, scope, fmt, document["rows"], digest)
    return ExportResult(fmt, Path(output), document["rows"], digest)


def writer_for(fmt):
    if fmt not in FORMATS:
        raise Invalid(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt in ("csv", "csv-long"):
        from ecrf.exchange.export_csv import write_csv
        return write_csv
    if fmt == "odm":
        from ecrf.exchange.export_odm import write_odm
        return write_odm
    if fmt in ("dataset-json", "ndjson"):
        from ecrf.exchange.export_datasetjson import write_dataset_json
        return write_dataset_json
    from ecrf.exchange.export_stats import require_extra, write_stats
    require_extra()
    return write_stats
