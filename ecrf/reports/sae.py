"""What an SAE report says: checks, the report content, and what changed since the previous version.

The content follows CIOMS I (shared/reference/STANDARDS.md §2) with what a trial adds: patient
(subject id, sex, age or year of birth, country; never a name or other direct identifier: those
three items are the only ones taken from the demographics form), reaction (term, onset, seriousness
criteria, outcome, narrative), suspect product (the study treatment from the exposure forms),
concomitant products from the subject's CM log (those given for this event apart, as CIOMS 22 asks),
history, causality and expectedness, sponsor and protocol, reporter, and the investigator's
signature of the AE record when it is signed.

The arm appears only when ``can_see_arm`` allows it to every role that reads SAE reports; in a
blinded study the suspect product reads "Blinded study treatment" whatever ``Subject.arm`` holds.

``gather`` reads the database; everything else here is pure, so the content can be built and
rendered in tests without one. The content is stored with each issued report as JSON: a follow-up
compares its content with its predecessor's (``changes_between``).
"""
import dataclasses
import datetime as dt
import zoneinfo

from sqlalchemy import select

from ecrf.auth.permissions import PERMISSIONS
from ecrf.errors import Invalid
from ecrf.models import FormRecord, User
from ecrf.randomization import can_see_arm

#: Content format, stored with each report so that later code can read old content.
CONTENT_FORMAT = 1

#: The CIOMS I seriousness criteria (boxes 8-12) and the CDASH variables that answer them.
CRITERIA = (
    ("aesdth", "Patient died"),
    ("aeslife", "Life-threatening"),
    ("aeshosp", "Involved or prolonged inpatient hospitalisation"),
    ("aesdisab", "Involved persistence or significant disability or incapacity"),
    ("aescong", "Congenital anomaly or birth defect"),
    ("aesmie", "Other medically important condition"),
)

#: What an AE record must hold before an SAE report can be issued from it.
REQUIRED = ("aeterm", "aestdat", *(name for name, _ in CRITERIA), "aerel", "aeout", "saeawdtc",
            "saenarr")

#: Fields that may carry the investigator's expectedness assessment (not a CDASH AE variable).
EXPECTEDNESS_FIELDS = ("saeexpect", "aeexpect")
NOT_ASSESSED = ("not assessed on the CRF; the sponsor assesses expectedness against the reference "
                "safety information")
NOT_RECORDED = "not recorded on the CRF"
BLINDED_PRODUCT = "Blinded study treatment"

# --- checks ---------------------------------------------------------------------------------------

def _title(form_def, name):
    field = form_def.field(name)
    return field.title if field is not None else name


def _blank(value):
    return value is None or (isinstance(value, str) and not value.strip())


def parse_datetime(value):
    """An aware datetime from an ISO 8601 date-time string, or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def check_reportable(form_def, data, seq):
    """Raise Invalid (422) naming every field an SAE report needs but the AE record lacks."""
    if data.get("aeser") != "Y":
        said = {"N": "No", None: "not answered"}.get(data.get("aeser"), data.get("aeser"))
        raise Invalid(f"adverse event {seq} is not serious ({_title(form_def, 'aeser')}: {said}): "
                      "SAE reports are issued only for serious adverse events; nothing was issued",
                      [("/aeser", "must be Yes for an SAE report")])
    errors = [(f"/{name}", f"{_title(form_def, name)} is missing")
              for name in REQUIRED if _blank(data.get(name))]
    if not _blank(data.get("saeawdtc")) and parse_datetime(data["saeawdtc"]) is None:
        errors.append(("/saeawdtc", f"{_title(form_def, 'saeawdtc')} must be a date and time "
                                    "with its UTC offset"))
    answered = [name for name, _ in CRITERIA if not _blank(data.get(name))]
    if len(answered) == len(CRITERIA) and not any(data.get(name) == "Y" for name, _ in CRITERIA):
        errors.append(("/aeser", "a serious event needs at least one seriousness criterion "
                                 "answered Yes"))
    if errors:
        named = ", ".join(f"{message.removesuffix(' is missing')} ({pointer[1:]})"
                          if message.endswith(" is missing") else message
                          for pointer, message in errors)
        raise Invalid(f"the SAE report for adverse event {seq} cannot be issued, nothing was "
                      f"issued; missing or incomplete: {named}", errors)


# --- values as people read them -------------------------------------------------------------------

def label(form_def, name, value):
    """A stored value as the form shows it (its code-list label), or "" when empty."""
    if _blank(value):
        return ""
    field = form_def.field(name) if form_def is not None else None
    if field is not None:
        labels = field.ecrf.get("labels", {})
        if str(value) in labels:
            return labels[str(value)]
        for option in field.schema.get("oneOf", ()):
            if option.get("const") == value and option.get("title"):
                return option["title"]
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, (list, tuple)):
        return ", ".join(label(form_def, name, v) for v in value)
    return str(value)


def with_unit(form_def, name, value):
    text = label(form_def, name, value)
    field = form_def.field(name) if form_def is not None else None
    unit = field.ecrf.get("unit") if field is not None else None
    return f"{text} {unit}" if text and unit else text


def local_time(moment, timezone):
    """``moment`` in the site's zone, with the zone named: "2026-11-20 10:30 CET (Europe/Copenhagen)"."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = parse_datetime(moment)
        if moment is None:
            return ""
    try:
        zone = zoneinfo.ZoneInfo(timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    shown = moment.astimezone(zone)
    name = zone.key if zone.key == "UTC" else f"{shown.tzname()} ({zone.key})"
    return f"{shown:%Y-%m-%d %H:%M} {name}"


# --- the inputs and the content -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Entry:
    """One form record as the report needs it: the form definition, the data and where it was."""

    form: object            # loader FormDef
    data: dict
    seq: int = 1
    visit: str = ""         # visit label, "" for log entries


@dataclasses.dataclass(frozen=True)
class SaeInputs:
    """Everything an SAE report is made of, read from the database by ``gather`` (or built by hand)."""

    spec: object            # loader Study
    site_key: str
    site_name: str
    site_timezone: str
    subject_key: str
    ae: Entry
    show_arm: bool = False
    arm: str | None = None
    demographics: dict | None = None
    demographics_form: object = None
    exposures: tuple = ()    # Entry per exposure record
    medications: tuple = ()  # Entry per CM log entry
    history: tuple = ()      # Entry per medical-history record
    signature: dict | None = None
    reporter: dict = dataclasses.field(default_factory=dict)


def _site_country(spec, site_key):
    for site in spec.document.get("sites", ()):
        if site.get("id") == site_key:
            return site.get("country", "")
    return ""


def _patient(inputs):
    dm, form = inputs.demographics or {}, inputs.demographics_form
    birth = dm.get("brthdtc") or dm.get("brthdat") or ""
    year = birth[:4] if isinstance(birth, str) and birth[:4].isdigit() else ""
    return {"subject": inputs.subject_key, "sex": label(form, "sex", dm.get("sex")),
            "age": "" if _blank(dm.get("age")) else str(dm["age"]),
            "age_unit": label(form, "ageu", dm.get("ageu")) or "years", "year_of_birth": year,
            "country": _site_country(inputs.spec, inputs.site_key)}


def _reaction(inputs):
    form, data = inputs.ae.form, inputs.ae.data
    return {
        "entry": inputs.ae.seq,
        "term": data.get("aeterm", ""),
        "onset": data.get("aestdat", ""),
        "end": data.get("aeendat", ""),
        "ongoing": label(form, "aeongo", data.get("aeongo")),
        "grade": label(form, "aetoxgr", data.get("aetoxgr")),
        "criteria": [{"field": name, "label": text, "ticked": data.get(name) == "Y",
                      "answer": label(form, name, data.get(name)) or "not answered"}
                     for name, text in CRITERIA],
        "outcome": label(form, "aeout", data.get("aeout")),
        "aware": local_time(data.get("saeawdtc"), inputs.site_timezone),
        "hospital_admission": data.get("saehosdt", ""),
        "hospital_discharge": data.get("saedisdt", ""),
        "narrative": data.get("saenarr", ""),
        "treated": label(form, "aecontrt", data.get("aecontrt")),
    }


def _arm(spec, arm_id):
    for arm in spec.document.get("arms", ()):
        if arm.get("id") == arm_id:
            return arm
    return None


def _dose(entry):
    form, data = entry.form, entry.data
    if not _blank(data.get("exdose")):
        unit = label(form, "exdosu", data.get("exdosu")) or (form.field("exdose").ecrf.get("unit", "")
                                                             if form.field("exdose") else "")
        return f"{label(form, 'exdose', data['exdose'])} {unit}".strip()
    for name in ("extotdose", "exvoltot", "exdostot"):
        if not _blank(data.get(name)):
            return f"{_title(form, name)}: {with_unit(form, name, data[name])}"
    return NOT_RECORDED


def _suspect(inputs):
    spec = inputs.spec
    arms = spec.document.get("arms", ())
    if not inputs.show_arm:
        product, description = BLINDED_PRODUCT, ""
    else:
        arm = _arm(spec, inputs.arm) if inputs.arm else (arms[0] if len(arms) == 1 else None)
        if arm is not None:
            product, description = arm["label"], arm.get("description", "")
        else:
            product, description = "Study treatment (arm not allocated)", ""
    administrations = []
    for entry in inputs.exposures:
        form, data = entry.form, entry.data
        administrations.append({
            "visit": entry.visit,
            "start": data.get("exstdtc") or data.get("exstdat") or "",
            "end": data.get("exendtc") or data.get("exendat") or "",
            "dose": _dose(entry),
            "route": label(form, "exroute", data.get("exroute")) or NOT_RECORDED,
            "batch": data.get("exlot") or data.get("exkit") or "",
        })
    data, form = inputs.ae.data, inputs.ae.form
    return {"product": product, "description": description, "blinded": not inputs.show_arm,
            "administrations": administrations,
            "action_taken": label(form, "aeacn", data.get("aeacn")) or NOT_RECORDED}


def _medication(entry):
    form, data = entry.form, entry.data
    amount = label(form, "cmdstxt", data.get("cmdstxt")) or label(form, "cmdose", data.get("cmdose"))
    dose = " ".join(part for part in (amount, label(form, "cmdosu", data.get("cmdosu")),
                                      label(form, "cmdosfrq", data.get("cmdosfrq"))) if part)
    return {"entry": entry.seq, "product": data.get("cmtrt", ""), "dose": dose,
            "route": label(form, "cmroute", data.get("cmroute")),
            "indication": data.get("cmindc", ""), "start": data.get("cmstdat") or data.get("cmstdtc") or "",
            "end": data.get("cmendat") or data.get("cmendtc") or "",
            "ongoing": label(form, "cmongo", data.get("cmongo"))}


def _conditions(entry):
    """Medical-history conditions of a record: top-level mhterm, or rows of a repeating group."""
    rows = [entry.data] if "mhterm" in entry.data else []
    for value in entry.data.values():
        if isinstance(value, list):
            rows += [row for row in value if isinstance(row, dict) and "mhterm" in row]
    return [{"term": row.get("mhterm", ""), "start": row.get("mhstdat", ""),
             "end": row.get("mhendat", ""),
             "ongoing": {"Y": "Yes", "N": "No"}.get(row.get("mhongo"), row.get("mhongo") or "")}
            for row in rows if not _blank(row.get("mhterm"))]


def _causality(inputs):
    form, data = inputs.ae.form, inputs.ae.data
    rows = [{"label": field.title, "value": label(form, field.name, data.get(field.name)) or "not assessed"}
            for field in form.fields if field.name.startswith("aerel")]
    expected = next((label(form, name, data.get(name)) for name in EXPECTEDNESS_FIELDS
                     if not _blank(data.get(name))), "")
    return rows, expected or NOT_ASSESSED


def build_content(inputs):
    """The report content (JSON-serialisable) for ``inputs``."""
    spec = inputs.spec
    protocol = spec.document.get("protocol", {})
    own = [_medication(e) for e in inputs.medications]
    ae_seq = inputs.ae.seq
    for_event = [m for m, e in zip(own, inputs.medications, strict=True) if e.data.get("cmaeno") == ae_seq]
    concomitant = [m for m, e in zip(own, inputs.medications, strict=True) if e.data.get("cmaeno") != ae_seq]
    causality, expectedness = _causality(inputs)
    conditions = [c for entry in inputs.history for c in _conditions(entry)]
    return {
        "format": CONTENT_FORMAT,
        "study": {"key": spec.id, "title": spec.title, "protocol": protocol.get("number", ""),
                  "registry_ids": list(protocol.get("registry_ids", ())),
                  "phase": protocol.get("phase", ""), "sponsor": protocol.get("sponsor", "")},
        "site": {"key": inputs.site_key, "name": inputs.site_name, "timezone": inputs.site_timezone},
        "patient": _patient(inputs),
        "reaction": _reaction(inputs),
        "suspect": _suspect(inputs),
        "concomitant": concomitant,
        "event_treatment": for_event,
        "history": {"text": inputs.ae.data.get("saehist", ""), "conditions": conditions},
        "causality": causality,
        "expectedness": expectedness,
        "reporter": dict(inputs.reporter),
        "signature": inputs.signature,
    }


# --- follow-ups -----------------------------------------------------------------------------------

def _lines(items, keys):
    return "\n".join(" · ".join(str(item.get(k)) for k in keys if item.get(k)) for item in items)


def readable(content):
    """{"Section: item": text} of everything a follow-up compares (not the reporter or the issue
    details, which every version has anew)."""
    r, s, p = content["reaction"], content["suspect"], content["patient"]
    rows = {
        "Patient: sex": p["sex"], "Patient: age": p["age"], "Patient: year of birth": p["year_of_birth"],
        "Reaction: term": r["term"], "Reaction: onset": r["onset"], "Reaction: end": r["end"],
        "Reaction: ongoing": r["ongoing"], "Reaction: CTCAE grade": r["grade"],
    }
    for criterion in r["criteria"]:
        rows[f"Seriousness: {criterion['label']}"] = criterion["answer"]
    rows.update({
        "Reaction: outcome": r["outcome"], "Reaction: investigator aware": r["aware"],
        "Reaction: hospital admission": r["hospital_admission"],
        "Reaction: hospital discharge": r["hospital_discharge"],
        "Reaction: narrative": r["narrative"], "Reaction: treatment given": r["treated"],
        "Suspect product": s["product"], "Suspect product: action taken": s["action_taken"],
        "Suspect product: administrations": _lines(s["administrations"],
                                                   ("start", "end", "dose", "route", "batch")),
        "Concomitant products": _lines(content["concomitant"],
                                       ("product", "dose", "route", "indication", "start", "end")),
        "Treatment of the event": _lines(content["event_treatment"],
                                         ("product", "dose", "route", "start", "end")),
        "History: relevant history": content["history"]["text"],
        "History: conditions": _lines(content["history"]["conditions"], ("term", "start", "end")),
    })
    for row in content["causality"]:
        rows[f"Causality: {row['label']}"] = row["value"]
    rows["Expectedness"] = content["expectedness"]
    signature = content.get("signature")
    rows["Investigator signature"] = (f"{signature['name']}, {signature['signed_at']}"
                                      if signature else "not signed")
    return rows


def changes_between(previous, current):
    """[{"item", "old", "new"}] for what differs between two report contents, in report order."""
    before, after = readable(previous), readable(current)
    return [{"item": key, "old": before.get(key, ""), "new": value}
            for key, value in after.items() if before.get(key, "") != value]


# --- reading the database -------------------------------------------------------------------------

def report_shows_arm(session, study):
    """Whether a report may carry the arm: only when every role that reads SAE reports may see it."""
    return all(can_see_arm(session, role, study) for role in sorted(PERMISSIONS["sae.view"]))


def record_signature(session, record, timezone="UTC", signatures=None):
    """The investigator's signature over ``record`` as it must be shown (21 CFR 11.50: printed name,
    date and time, meaning), or None when no signature covering it holds any more.

    Signatures and their validity come from ``ecrf.review.signatures``: the newest signature whose
    scope (form, visit or casebook) covers the record and whose signed data is unchanged.
    ``signatures`` (from ``signatures_of``) saves the lookup when many records are shown.
    """
    from ecrf.review.signatures import covers, signatures_of

    views = signatures if signatures is not None else signatures_of(session, record.subject)
    view = next((v for v in views if v.valid and covers(v.row, record)), None)
    if view is None:
        return None
    signer = session.get(User, view.row.signer_id)
    return {"name": view.row.printed_name, "username": signer.username if signer else "",
            "signed_at": local_time(view.row.signed_at, timezone), "meaning": view.row.meaning}


def _has(form_def, *names):
    props = form_def.schema.get("properties", {})
    return any(name in props for name in names)


def _has_history(form_def):
    props = form_def.schema.get("properties", {})
    if "mhterm" in props:
        return True
    return any(isinstance(p, dict) and p.get("type") == "array"
               and "mhterm" in p.get("items", {}).get("properties", {}) for p in props.values())


def gather(session, study, spec, subject, record, reporter):
    """Read what the report on AE ``record`` of ``subject`` needs; ``reporter`` is
    {"name", "username", "role"} of whoever issues it."""
    visit_order = {v.id: i for i, v in enumerate(spec.visits)}
    labels = {v.id: v.label for v in spec.visits}
    records = session.scalars(select(FormRecord).where(FormRecord.subject_id == subject.id)
                              .order_by(FormRecord.id)).all()
    demographics, demographics_form = None, None
    exposures, medications, history = [], [], []
    for other in sorted(records, key=lambda r: (visit_order.get(r.visit_key, len(visit_order)),
                                                r.visit_key, r.form_key, r.seq)):
        form_def = spec.forms.get(other.form_key)
        if form_def is None:
            continue
        entry = Entry(form_def, dict(other.data or {}), other.seq,
                      labels.get(other.visit_key, other.visit_key or ""))
        if demographics is None and _has(form_def, "sex") and other.data.get("sex") is not None:
            demographics, demographics_form = entry.data, form_def
        if _has(form_def, "exstdtc", "exstdat") and (other.data.get("exstdtc") or other.data.get("exstdat")):
            exposures.append(entry)
        if other.visit_key == "" and _has(form_def, "cmtrt"):
            medications.append(entry)
        if _has_history(form_def):
            history.append(entry)
    medications.sort(key=lambda e: e.seq)
    show_arm = report_shows_arm(session, study)
    return SaeInputs(
        spec=spec, site_key=subject.site.key, site_name=subject.site.name,
        site_timezone=subject.site.timezone or "UTC", subject_key=subject.key,
        ae=Entry(spec.forms[record.form_key], dict(record.data or {}), record.seq),
        show_arm=show_arm, arm=subject.arm if show_arm else None,
        demographics=demographics, demographics_form=demographics_form,
        exposures=tuple(exposures), medications=tuple(medications), history=tuple(history),
        signature=record_signature(session, record, subject.site.timezone or "UTC"),
        reporter=dict(reporter))


# --- the clock ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Clock:
    """The report clock: from the investigator's awareness to the initial report."""

    aware_at: dt.datetime | None
    due_at: dt.datetime | None
    reported_at: dt.datetime | None
    hours: int

    def overdue(self, now):
        if self.due_at is None:
            return False
        return (self.reported_at or now) > self.due_at

    def elapsed_hours(self, now):
        if self.aware_at is None:
            return None
        return round(((self.reported_at or now) - self.aware_at).total_seconds() / 3600, 1)

    def remaining_hours(self, now):
        if self.due_at is None or self.reported_at is not None:
            return None
        return round((self.due_at - now).total_seconds() / 3600, 1)


def report_hours(spec):
    return int((spec.safety or {}).get("report_within_hours", 24))


def clock(spec, ae_data, reported_at=None):
    aware = parse_datetime(ae_data.get("saeawdtc"))
    hours = report_hours(spec)
    aware_utc = aware.astimezone(dt.timezone.utc) if aware else None
    return Clock(aware_utc, aware_utc + dt.timedelta(hours=hours) if aware_utc else None,
                 reported_at, hours)
