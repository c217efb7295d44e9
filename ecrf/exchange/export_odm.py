"""CDISC ODM 1.3.2 export: ``Study`` with ``MetaDataVersion`` (a StudyEventDef per visit, FormDef,
ItemGroupDef, ItemDef with DataType, range checks, units and CodeList) and ``AdminData`` (sites as
Locations; users and signature meanings when asked for), then ``ClinicalData`` streamed subject by
subject. Optionally each value's ``AuditRecord`` (its last change: who, when, why) and the forms'
``Signature`` elements, for archiving.

The same tables and columns as every other format (``export_layout``): label columns are left out
(the CodeList carries the labels); missing-data flags are items of their own (``IT.<form>.<field>.MISSING``
and ``.REASON``); partial dates keep the ODM ``partialDate`` type and the value as written. The 1/0
item of each option of a multiple-choice field carries ``Alias`` elements naming the field and its
title (``ecrf import odm`` puts the field together again from them); a visit's StudyEventDef
carries its day and window the same way (``ecrf.day``, ``ecrf.window_before``, ``ecrf.window_after``)
and its description. Log forms
are repeating forms of one ``SE.LOGS`` event; unscheduled visits are repeats of ``SE.UNSCHEDULED``.
"""
import datetime as dt
import io

from xml.sax.saxutils import escape, quoteattr

from sqlalchemy import select

from audit import audit_event
from ecrf.exchange import export_service as service
from ecrf.exchange.export_layout import form_tables

NS = "http://www.cdisc.org/ns/odm/v1.3"
LOGS = "SE.LOGS"
UNSCHEDULED = "SE.UNSCHEDULED"
_DATA_ACTIONS = ("create", "update", "clear")
#: Alias contexts on the 1/0 item of each option of a multiple-choice field: the field, its title.
CHOICE = "ecrf.choice"
#: A visit's schedule, carried by Alias elements of its StudyEventDef (context ``ecrf.<name>``).
SCHEDULE = ("day", "window_before", "window_after")
CHOICE_TITLE = "ecrf.choice.title"


def _a(**attrs):
    return "".join(f" {k}={quoteattr(str(v))}" for k, v in attrs.items() if v is not None)


def _text(tag, text, lang="en"):
    return f"<{tag}><TranslatedText xml:lang={quoteattr(lang)}>{escape(str(text))}</TranslatedText></{tag}>"


def _attr_value(cell):
    """A Value attribute's quoted text (numbers need no escaping)."""
    if isinstance(cell, int):
        return f'"{cell}"'
    if isinstance(cell, float):
        return f'"{cell!r}"'
    return quoteattr(cell)


def _value(cell):
    if isinstance(cell, float):
        return repr(cell)
    return str(cell)


def _event_oid(visit_key):
    if visit_key == "":
        return LOGS, None
    if visit_key.startswith("unscheduled_"):
        return UNSCHEDULED, visit_key.removeprefix("unscheduled_")
    return f"SE.{visit_key}", None


#: Characters gathered before they are encoded and written.
BUFFER = 1 << 16


class _Out:
    """Text written as UTF-8 to the binary file, in large chunks."""

    def __init__(self, raw):
        self.hashing = service.HashingWriter(raw)
        self.buffer = io.StringIO()

    def write(self, text):
        self.buffer.write(text)
        if self.buffer.tell() > BUFFER:
            self.flush()

    def flush(self):
        self.hashing.write(self.buffer.getvalue().encode("utf-8"))
        self.buffer = io.StringIO()


def _metadata(out, scope, tables, mdv):
    spec = scope.spec
    chosen = set(scope.forms)
    units = sorted({c.unit for t in tables for c in t.columns if c.unit})
    unit_oid = {u: f"MU.{i + 1}" for i, u in enumerate(units)}
    protocol = spec.document.get("protocol") or {}
    out.write(f"<Study{_a(OID=f'S.{spec.id}')}><GlobalVariables><StudyName>{escape(spec.title)}</StudyName>"
              f"<StudyDescription>{escape(spec.document.get('description') or spec.title)}</StudyDescription>"
              f"<ProtocolName>{escape(protocol.get('number') or spec.id)}</ProtocolName></GlobalVariables>")
    if units:
        out.write("<BasicDefinitions>")
        for unit in units:
            out.write(f"<MeasurementUnit{_a(OID=unit_oid[unit], Name=unit)}>{_text('Symbol', unit)}</MeasurementUnit>")
        out.write("</BasicDefinitions>")
    out.write(f"<MetaDataVersion{_a(OID=mdv, Name=f'{spec.id} version {scope.study.current.number}')}>")
    events = []  # (oid, name, repeating, type, forms, visit or None)
    for visit in spec.visits:
        forms = [f for f in visit.forms if f in chosen]
        events.append((f"SE.{visit.id}", visit.label, "No", "Scheduled", forms, visit))
    unscheduled = [f for f in spec.document.get("unscheduled_forms", ()) if f in chosen]
    if unscheduled:
        events.append((UNSCHEDULED, "Unscheduled visit", "Yes", "Unscheduled", unscheduled, None))
    logs = [f for f in spec.log_forms if f in chosen]
    if logs:
        events.append((LOGS, "Logs", "No", "Common", logs, None))
    out.write("<Protocol>")
    for number, (oid, *_rest) in enumerate(events, start=1):
        out.write(f"<StudyEventRef{_a(StudyEventOID=oid, OrderNumber=number, Mandatory='No')}/>")
    out.write("</Protocol>")
    descriptions = {v["id"]: v.get("description") for v in spec.document.get("visits", ())}
    for oid, name, repeating, kind, forms, visit in events:
        out.write(f"<StudyEventDef{_a(OID=oid, Name=name, Repeating=repeating, Type=kind)}>")
        if visit is not None and descriptions.get(visit.id):
            out.write(_text("Description", descriptions[visit.id]))
        for number, form in enumerate(forms, start=1):
            out.write(f"<FormRef{_a(FormOID=f'F.{form}', OrderNumber=number, Mandatory='No')}/>")
        if visit is not None:  # the schedule, which ODM has no element for
            for field in SCHEDULE:
                out.write(f"<Alias{_a(Context=f'ecrf.{field}', Name=getattr(visit, field))}/>")
        out.write("</StudyEventDef>")
    for form in scope.forms:
        repeating = "Yes" if form in spec.log_forms else "No"
        out.write(f"<FormDef{_a(OID=f'F.{form}', Name=spec.forms[form].title or form, Repeating=repeating)}>")
        for table in tables:
            if table.form == form:
                out.write(f"<ItemGroupRef{_a(ItemGroupOID=table.oid, Mandatory='No')}/>")
        out.write("</FormDef>")
    for table in tables:
        out.write(f"<ItemGroupDef{_a(OID=table.oid, Name=table.name, Repeating='Yes' if table.group else 'No')}>")
        out.write(_text("Description", table.label))
        for number, column in enumerate((c for c in table.columns if c.in_metadata), start=1):
            out.write(f"<ItemRef{_a(ItemOID=column.oid, OrderNumber=number, Mandatory='No')}/>")
        out.write("</ItemGroupDef>")
    code_lists = []
    for table in tables:
        for column in table.columns:
            if not column.in_metadata:
                continue
            out.write(f"<ItemDef{_a(OID=column.oid, Name=column.name, DataType=column.data_type)}>")
            out.write(_text("Question", column.label))
            if column.unit:
                out.write(f"<MeasurementUnitRef{_a(MeasurementUnitOID=unit_oid[column.unit])}/>")
            for comparator, bound in (("GE", column.minimum), ("LE", column.maximum)):
                if bound is not None:
                    out.write(f"<RangeCheck{_a(Comparator=comparator, SoftHard='Hard')}>"
                              f"<CheckValue>{escape(_value(bound))}</CheckValue></RangeCheck>")
            if column.codes:
                out.write(f"<CodeListRef{_a(CodeListOID=f'CL.{column.oid}')}/>")
                code_lists.append(column)
            if column.role == "choice":  # so that an import puts the multiple-choice field together again
                out.write(f"<Alias{_a(Context=CHOICE, Name=column.field)}/>"
                          f"<Alias{_a(Context=CHOICE_TITLE, Name=column.field_title)}/>")
            out.write("</ItemDef>")
    for column in code_lists:
        kind = column.code_type if column.code_type in ("integer", "float") else "text"
        out.write(f"<CodeList{_a(OID=f'CL.{column.oid}', Name=column.name, DataType=kind)}>")
        for code, label in column.codes:
            out.write(f"<CodeListItem{_a(CodedValue=code)}>{_text('Decode', label)}</CodeListItem>")
        out.write("</CodeList>")
    out.write("</MetaDataVersion></Study>")


def _users(session, scope):
    """OIDs of everyone who changed data or signed in the scope (for AuditRecord and Signature)."""
    names = session.scalars(select(audit_event.c.actor_name).distinct().where(
        audit_event.c.study == scope.study.key, audit_event.c.actor_name.is_not(None)))
    return {name: f"USR.{i + 1}" for i, name in enumerate(sorted(names))}


def _admin(out, session, scope, mdv, users, signatures):
    from ecrf.models import Site

    sites = session.scalars(select(Site).where(Site.study_id == scope.study.id).order_by(Site.key))
    effective = scope.study.current.loaded_at.date().isoformat()
    out.write("<AdminData>")
    for name, oid in users.items():
        out.write(f"<User{_a(OID=oid)}><LoginName>{escape(name)}</LoginName></User>")
    for site in sites:
        if scope.site_ids is None or site.id in scope.site_ids:
            out.write(f"<Location{_a(OID=f'LOC.{site.key}', Name=site.name, LocationType='Site')}>"
                      f"<MetaDataVersionRef{_a(StudyOID=f'S.{scope.spec.id}', MetaDataVersionOID=mdv, EffectiveDate=effective)}/>"
                      "</Location>")
    for meaning, oid in signatures.items():
        out.write(f"<SignatureDef{_a(OID=oid, Methodology='Electronic')}><Meaning>{escape(meaning)}</Meaning>"
                  "<LegalReason>21 CFR Part 11 electronic signature (password re-entered)</LegalReason>"
                  "</SignatureDef>")
    out.write("</AdminData>")


def _last_changes(session, scope, record_id):
    """pointer -> (actor, timestamp, reason) of the last data event on each field of a record."""
    rows = session.execute(select(audit_event.c.field, audit_event.c.actor_name, audit_event.c.ts,
                                  audit_event.c.reason)
                           .where(audit_event.c.study == scope.study.key, audit_event.c.record == record_id,
                                  audit_event.c.action.in_(_DATA_ACTIONS))
                           .order_by(audit_event.c.seq))
    return {field: (actor, ts, reason) for field, actor, ts, reason in rows}


def _signatures_by_record(session, scope):
    """record id -> (Signature, the signer's username): the latest signature covering each record."""
    from ecrf.models import Signature, User

    found = {}
    for sig, username in session.execute(select(Signature, User.username)
                                         .join(User, User.id == Signature.signer_id)
                                         .where(Signature.study_id == scope.study.id)
                                         .order_by(Signature.signed_at, Signature.id)):
        for record_id in sig.record_ids or ([sig.record_id] if sig.record_id else []):
            found[record_id] = (sig, username)
    return found


def write_odm(session, scope, sink, *, actor, fmt="odm", progress=None, audit=False, signatures=False):
    """Write the ODM file of ``scope`` to ``sink`` (``FileSink`` or the streamed response); return the export's manifest (not written: ODM is
    one file; its SHA-256 is in the manifest the audit event hashes)."""
    tables = [t for form in scope.forms for t in form_tables(scope.spec.forms[form])]
    by_form = {}
    for table in tables:
        by_form.setdefault(table.form, []).append(table)
    mdv = f"MDV.{scope.study.current.number}"
    users = _users(session, scope) if (audit or signatures) else {}
    signed = _signatures_by_record(session, scope) if signatures else {}
    for _sig, username in signed.values():
        _user(users, username)
    meanings = {m: f"SD.{i + 1}" for i, m in enumerate(sorted({s.meaning for s, _u in signed.values()}))}
    rows = {t.name: 0 for t in tables}
    opening = {c.oid: f"<ItemData ItemOID={quoteattr(c.oid)} Value=" for t in tables for c in t.columns}
    created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    with sink.open(sink.name) as raw:
        out = _Out(raw)
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        out.write(f"<ODM xmlns={quoteattr(NS)}{_a(ODMVersion='1.3.2', FileOID=f'ecrf.{scope.spec.id}.{created}', FileType='Snapshot', CreationDateTime=created, Originator=actor.name, SourceSystem='ecrf')}>")
        _metadata(out, scope, tables, mdv)
        _admin(out, session, scope, mdv, users, meanings)
        out.write(f"<ClinicalData{_a(StudyOID=f'S.{scope.spec.id}', MetaDataVersionOID=mdv)}>")
        subject = event = None
        for record in service.iter_records(session, scope):
            if record.subject != subject:
                if subject is not None:
                    out.write("</StudyEventData></SubjectData>")
                subject, event = record.subject, None
                out.write(f"<SubjectData{_a(SubjectKey=record.subject)}><SiteRef{_a(LocationOID=f'LOC.{record.site}')}/>")
            oid, repeat = _event_oid(record.visit)
            if (oid, repeat) != event:
                if event is not None:
                    out.write("</StudyEventData>")
                event = (oid, repeat)
                out.write(f"<StudyEventData{_a(StudyEventOID=oid, StudyEventRepeatKey=repeat)}>")
            form_repeat = record.record if record.form in scope.spec.log_forms else None
            out.write(f"<FormData{_a(FormOID=f'F.{record.form}', FormRepeatKey=form_repeat)}>")
            sig, signer = signed.get(record.record_id, (None, None))
            if sig is not None:
                out.write(f"<Signature{_a(ID=f'SIG.{sig.id}')}><UserRef{_a(UserOID=users[signer])}/>"
                          f"<LocationRef{_a(LocationOID=f'LOC.{record.site}')}/>"
                          f"<SignatureRef{_a(SignatureOID=meanings[sig.meaning])}/>"
                          f"<DateTimeStamp>{sig.signed_at.strftime('%Y-%m-%dT%H:%M:%S+00:00')}</DateTimeStamp></Signature>")
            changes = _last_changes(session, scope, record.record_id) if audit else {}
            for table in by_form[record.form]:
                for number, cells in enumerate(table.rows_of(record.data, record.missing), start=1):
                    group_repeat = number if table.group else None
                    items = [(c, v) for c, v in zip(table.columns, cells, strict=True)
                             if c.in_metadata and v is not None]
                    if not items:
                        continue
                    rows[table.name] += 1
                    out.write(f"<ItemGroupData{_a(ItemGroupOID=table.oid, ItemGroupRepeatKey=group_repeat)}>")
                    for column, cell in items:
                        out.write(f"{opening[column.oid]}{_attr_value(cell)}")
                        change = _change(changes, table, column, number) if audit else None
                        if change is None:
                            out.write("/>")
                            continue
                        who, when, why = change
                        out.write(f"><AuditRecord><UserRef{_a(UserOID=_user(users, who))}/>"
                                  f"<LocationRef{_a(LocationOID=f'LOC.{record.site}')}/>"
                                  f"<DateTimeStamp>{escape(when)}</DateTimeStamp>"
                                  + (f"<ReasonForChange>{escape(why)}</ReasonForChange>" if why else "")
                                  + "</AuditRecord></ItemData>")
                    out.write("</ItemGroupData>")
            out.write("</FormData>")
            if progress:
                progress(1)
        if subject is not None:
            out.write("</StudyEventData></SubjectData>")
        out.write("</ClinicalData></ODM>\n")
        out.flush()
    files = {sink.name: {"bytes": out.hashing.size, "sha256": out.hashing.sha256.hexdigest()}}
    return service.manifest(scope, fmt, files, rows, actor, audit_records=audit, signatures=signatures)


def _user(users, name):
    if name not in users:  # a signer with no data event in the study: still a User of AdminData
        users[name] = f"USR.{name}"
    return users[name]


def _change(changes, table, column, number):
    """The last change of the value a column holds: logged at its own pointer (``/doses/1/dose``),
    or at its repeating group's when rows were added or removed (the group is then one leaf)."""
    if table.group:
        return changes.get(f"/{table.group}/{number - 1}/{column.field}") or changes.get(f"/{table.group}")
    return changes.get(f"/{column.field}")


