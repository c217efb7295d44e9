"""Study metadata from a CDISC ODM 1.3 file as an ecrf study definition.

Read: the Protocol's event order, StudyEventDef (scheduled events become visits; common and
unscheduled ones hold log forms and unscheduled forms), FormDef, ItemGroupDef (a section each; a
repeating group becomes a table), ItemDef (data type, length, significant digits, question),
CodeList (codes and decodes), RangeCheck (hard checks become bounds, soft ones soft checks) and
MeasurementUnit (the unit). What has no place in ecrf is a warning and the rest converts.

The XML is parsed by defusedxml with document type declarations refused outright: ODM needs none,
and refusing them stops external entities (XXE) and entity expansion ("billion laughs") before any
entity is read. Nothing is fetched from the network.
"""
from pathlib import Path
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from ecrf.errors import Invalid
from ecrf.exchange.studyfiles import STUDY_ID, Conversion, ConversionRefused, make_key, plain_text

SCHEMA = "https://json-schema.org/draft/2020-12/schema"
ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
#: Largest ODM file read (metadata files are far smaller; clinical data is not read here).
MAX_BYTES = 64 * 1024 * 1024

_PARTIAL_DATE = "^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$"
#: ODM DataType -> (schema, x-ecrf).
DATA_TYPES = {
    "text": ({"type": "string"}, {}), "string": ({"type": "string"}, {}),
    "integer": ({"type": "integer"}, {}), "float": ({"type": "number"}, {}),
    "double": ({"type": "number"}, {}), "boolean": ({"type": "boolean"}, {}),
    "date": ({"type": "string", "format": "date"}, {}),
    "time": ({"type": "string", "format": "time"}, {}),
    "datetime": ({"type": "string", "format": "date-time"}, {}),
    "partialDate": ({"type": "string", "pattern": _PARTIAL_DATE},
                    {"widget": "partial-date", "placeholder": "YYYY-MM-DD"}),
    "URI": ({"type": "string", "format": "uri"}, {}),
}
_BOUNDS = {"LT": "exclusiveMaximum", "LE": "maximum", "GT": "exclusiveMinimum", "GE": "minimum"}
_OPS = {"LT": "<", "LE": "<=", "GT": ">", "GE": ">=", "EQ": "==", "NE": "!="}


def parse_odm(path):
    """The root element of the ODM file at ``path``; Invalid for anything that is not safe,
    well-formed ODM 1.3."""
    path = Path(path)
    if path.stat().st_size > MAX_BYTES:
        raise Invalid(f"{path}: larger than {MAX_BYTES} bytes")
    try:
        root = SafeET.parse(path, forbid_dtd=True, forbid_entities=True, forbid_external=True).getroot()
    except DefusedXmlException as exc:
        raise Invalid(f"{path}: refused: the file declares a DTD or entities ({type(exc).__name__}); "
                      "ODM needs neither, and they can read local files or expand without end") from None
    except ParseError as exc:
        line, column = exc.position
        raise Invalid(f"{path}: not well-formed XML at line {line}, column {column + 1}") from None
    if root.tag != f"{{{ODM_NS}}}ODM":
        raise Invalid(f"{path}: not a CDISC ODM 1.3 file (the root is {root.tag!r}, "
                      f"not ODM in {ODM_NS})")
    return root


def _q(tag):
    return f"{{{ODM_NS}}}{tag}"


def _text(element, tag="Description"):
    """The English (or unlabelled, or first) TranslatedText under ``element/tag``."""
    holder = element.find(_q(tag)) if element is not None else None
    if holder is None:
        return ""
    texts = [t for t in holder.findall(_q("TranslatedText")) if (t.text or "").strip()]
    for want in ("en", None):
        for t in texts:
            lang = t.get(XML_LANG)
            if (want is None and lang is None) or (lang or "").lower().startswith(want or "\0"):
                return plain_text(t.text)
    return plain_text(texts[0].text) if texts else ""


def _ordered(refs):
    return sorted(refs, key=lambda r: int(r.get("OrderNumber") or 10**6))


def _own_id(oid, prefix, ecrf, last=False):
    """The id to make a key from: the OID, or in a file ecrf wrote (``SourceSystem="ecrf"``) the id
    ecrf exported it from (``SE.<visit>``, ``F.<form>``; ``last``: ``IT.<form>.<field>``,
    ``IG.<form>.<group>``), so that a study exported and imported again keeps its ids."""
    if not ecrf or not (oid or "").startswith(prefix):
        return oid
    return oid.rsplit(".", 1)[1] if last else oid[len(prefix):]


def convert_odm(root, study_id, title=None):
    """A ``Conversion`` of the first Study/MetaDataVersion of an ODM root element."""
    if not STUDY_ID.match(study_id or ""):
        raise Invalid(f"the study id {study_id!r} must be lower-case letters, digits and '-'")
    study_el = root.find(_q("Study"))
    mdv = study_el.find(_q("MetaDataVersion")) if study_el is not None else None
    if mdv is None:
        raise Invalid("the ODM file holds no study metadata (Study/MetaDataVersion)")
    conversion = Conversion({}, {})
    ecrf = root.get("SourceSystem") == "ecrf"
    if len(study_el.findall(_q("MetaDataVersion"))) > 1 or len(root.findall(_q("Study"))) > 1:
        conversion.warn("odm", "only the first Study and MetaDataVersion are converted")
    units = {}
    for unit in study_el.iter(_q("MeasurementUnit")):
        units[unit.get("OID")] = (_text(unit, "Symbol") or unit.get("Name") or "")[:40]
    defs = {tag: {e.get("OID"): e for e in mdv.findall(_q(tag))}
            for tag in ("StudyEventDef", "FormDef", "ItemGroupDef", "ItemDef", "CodeList")}
    problems = [(f"{tag} {oid}", f"{what} {ref!r} is not defined")
                for tag, oid, what, ref in _dangling(defs)]
    if problems:
        raise ConversionRefused(problems)

    form_keys, taken = {}, set()
    for oid in defs["FormDef"]:
        form_keys[oid] = make_key(_own_id(oid, "F.", ecrf), taken, "form", limit=50)
    for oid, form in defs["FormDef"].items():
        doc = _form(conversion, form_keys[oid], form, defs, units, ecrf)
        if doc is not None:
            conversion.forms[form_keys[oid]] = doc
    conversion.study = _study(conversion, study_id, title, study_el, mdv, defs, form_keys, ecrf)
    return conversion


def _dangling(defs):
    for oid, event in defs["StudyEventDef"].items():
        for ref in event.findall(_q("FormRef")):
            if ref.get("FormOID") not in defs["FormDef"]:
                yield "StudyEventDef", oid, "form", ref.get("FormOID")
    for oid, form in defs["FormDef"].items():
        for ref in form.findall(_q("ItemGroupRef")):
            if ref.get("ItemGroupOID") not in defs["ItemGroupDef"]:
                yield "FormDef", oid, "item group", ref.get("ItemGroupOID")
    for oid, group in defs["ItemGroupDef"].items():
        for ref in group.findall(_q("ItemRef")):
            if ref.get("ItemOID") not in defs["ItemDef"]:
                yield "ItemGroupDef", oid, "item", ref.get("ItemOID")
    for oid, item in defs["ItemDef"].items():
        ref = item.find(_q("CodeListRef"))
        if ref is not None and ref.get("CodeListOID") not in defs["CodeList"]:
            yield "ItemDef", oid, "code list", ref.get("CodeListOID")


def _field_name(item, taken, ecrf):
    name = item.get("SASFieldName") or _own_id(item.get("OID"), "IT.", ecrf, last=True)
    return make_key(name, taken, "item")


def _choice_code(oid, field):
    """The option's code in the OID ``IT.<form>.<field>.<code>`` (or ``IT.<form>.<group>.<field>.<code>``)
    of a multiple-choice field's option item, or None."""
    if not field:
        return None
    rest = oid.split(".", 2)[2] if oid.count(".") >= 2 else ""
    for tail in (rest, rest.partition(".")[2]):
        if tail.startswith(f"{field}.") and len(tail) > len(field) + 1:
            return tail[len(field) + 1:]
    return None


def _own_items(item_refs, defs):
    """In a file ecrf wrote, the items that are not fields of their own, by OID: ``("flags", field
    OID, flag codes)`` for a field's missing-data flag and reason (``<field OID>.MISSING``,
    ``.REASON``), ``("choice", field, title, code, label)`` for the 1/0 item of one option of a
    multiple-choice field (marked by its ``Alias`` elements)."""
    from ecrf.exchange.export_odm import CHOICE, CHOICE_TITLE

    oids = {r.get("ItemOID") for r in item_refs}
    found = {}
    for oid in oids:
        item = defs["ItemDef"][oid]
        base, _, suffix = oid.rpartition(".")
        aliases = {a.get("Context"): a.get("Name") for a in item.findall(_q("Alias"))}
        code = _choice_code(oid, aliases.get(CHOICE))
        if code is not None:
            title = aliases.get(CHOICE_TITLE) or aliases[CHOICE]
            question = _text(item, "Question")
            label = question.removeprefix(f"{title}: ") if question.startswith(f"{title}: ") else code
            found[oid] = ("choice", aliases[CHOICE], title, code, label)
        elif suffix in ("MISSING", "REASON") and base in oids:
            flags = []
            ref = item.find(_q("CodeListRef"))
            if suffix == "MISSING" and ref is not None:
                flags = [c.get("CodedValue") for c in defs["CodeList"][ref.get("CodeListOID")].findall(_q("CodeListItem"))]
            found[oid] = ("flags", base, flags)
    return found


def _form(conversion, key, form, defs, units, ecrf):
    properties, required, sections, section_ids, names = {}, [], [], set(), set()
    for group_ref in _ordered(form.findall(_q("ItemGroupRef"))):
        group = defs["ItemGroupDef"][group_ref.get("ItemGroupOID")]
        fields, group_required = {}, []
        taken = names if group.get("Repeating") != "Yes" else set()  # a table's columns are its own
        item_refs = _ordered(group.findall(_q("ItemRef")))
        own = _own_items(item_refs, defs) if ecrf else {}
        oid_names, choices = {}, {}
        for item_ref in item_refs:
            item = defs["ItemDef"][item_ref.get("ItemOID")]
            kind, *rest = own.get(item.get("OID"), ("item",))
            if kind == "flags":
                continue
            if kind == "choice":
                field, title, code, label = rest
                if field not in choices:
                    choices[field] = make_key(field, taken, "item")
                    fields[choices[field]] = {"title": title, "type": "array", "uniqueItems": True,
                                              "items": {"type": "string", "enum": []},
                                              "x-ecrf": {"widget": "checkboxes", "labels": {}}}
                choice = fields[choices[field]]
                choice["items"]["enum"].append(code)
                choice["x-ecrf"]["labels"][code] = label
                continue
            name = oid_names[item.get("OID")] = _field_name(item, taken, ecrf)
            schema = _item(conversion, f"{key}/{name}", item, defs, units)
            if schema is None:
                continue
            fields[name] = schema
            if item_ref.get("Mandatory") == "Yes":
                group_required.append(name)
            if item_ref.get("MethodOID") or item_ref.get("CollectionExceptionConditionOID"):
                conversion.warn(f"{key}/{name}", "a method or collection condition on the item is not "
                                                 "converted (ODM FormalExpressions are not translated)")
        for oid, (kind, *rest) in own.items():
            if kind == "flags" and rest[1] and oid_names.get(rest[0]) in fields:
                fields[oid_names[rest[0]]].setdefault("x-ecrf", {})["missing"] = rest[1]
        if not fields:
            continue
        title = _text(group) or group.get("Name") or group.get("OID")
        if group.get("Repeating") == "Yes":
            table = make_key(group.get("SASDatasetName") or _own_id(group.get("OID"), "IG.", ecrf, last=True),
                             names, "group")
            for schema in fields.values():
                schema.get("x-ecrf", {}).pop("warnings", None)
            items = {"type": "object", "properties": fields}
            if group_required:
                items["required"] = group_required
            properties[table] = {"title": title, "type": "array", "items": items, "x-ecrf": {"widget": "table"}}
            continue
        section = make_key(group.get("OID"), section_ids, "section")
        sections.append({"id": section, "title": title[:500]})
        for name, schema in fields.items():
            schema.setdefault("x-ecrf", {})["section"] = section
            properties[name] = schema
        required += group_required
    if group_ref_conditions := [r for r in form.findall(_q("ItemGroupRef"))
                                if r.get("CollectionExceptionConditionOID")]:
        conversion.warn(key, f"{len(group_ref_conditions)} collection condition(s) on item groups are "
                             "not converted")
    if not properties:
        conversion.warn(key, "the form has no item ecrf can hold; left out")
        return None
    doc = {"$schema": SCHEMA, "title": (form.get("Name") or _text(form) or key)[:500], "type": "object",
           "properties": properties}
    if _text(form) and _text(form) != doc["title"]:
        doc["description"] = _text(form)
    if required:
        doc["required"] = required
    if sections:
        doc["x-ecrf"] = {"sections": sections}
    return doc


def _item(conversion, where, item, defs, units):
    data_type = item.get("DataType")
    if data_type not in DATA_TYPES:
        conversion.warn(where, f"data type {data_type!r} has no equivalent in ecrf; left out")
        return None
    base, extra = DATA_TYPES[data_type]
    schema, extra = dict(base), dict(extra)
    schema = {"title": _text(item, "Question") or item.get("Name") or item.get("OID")} | schema
    description = _text(item)
    if description and description != schema["title"]:
        schema["description"] = description[:2000]
    if item.get("Length") and schema.get("type") == "string" and "format" not in schema \
            and "pattern" not in schema:
        schema["maxLength"] = int(item.get("Length"))
    if item.get("SignificantDigits") and schema.get("type") == "number":
        extra["decimals"] = min(int(item.get("SignificantDigits")), 10)
    unit_ref = item.find(_q("MeasurementUnitRef"))
    if unit_ref is not None and units.get(unit_ref.get("MeasurementUnitOID")):
        extra["unit"] = units[unit_ref.get("MeasurementUnitOID")]
    code_ref = item.find(_q("CodeListRef"))
    if code_ref is not None:
        _code_list(conversion, where, schema, extra, defs["CodeList"][code_ref.get("CodeListOID")])
    for check in item.findall(_q("RangeCheck")):
        _range_check(conversion, where, schema, extra, check)
    if extra:
        schema["x-ecrf"] = extra
    return schema


def _coded(schema, text):
    if schema.get("type") == "integer":
        return int(text)
    if schema.get("type") == "number":
        value = float(text)
        return int(value) if value.is_integer() else value
    return text


def _code_list(conversion, where, schema, extra, code_list):
    codes, labels = [], {}
    items = _ordered(code_list.findall(_q("CodeListItem"))) + code_list.findall(_q("EnumeratedItem"))
    for entry in items:
        raw = entry.get("CodedValue")
        try:
            code = _coded(schema, raw)
        except (TypeError, ValueError):
            conversion.warn(where, f"code {raw!r} does not fit the item's data type; left out")
            continue
        if code in codes:
            continue
        codes.append(code)
        labels[str(code)] = _text(entry, "Decode") or str(raw)
    if not codes:
        conversion.warn(where, f"code list {code_list.get('OID')} has no usable codes")
        return
    schema.pop("maxLength", None)
    schema["enum"] = codes
    extra["labels"] = labels
    extra["widget"] = "radio" if len(codes) <= 5 else "select"


def _range_check(conversion, where, schema, extra, check):
    comparator, values = check.get("Comparator"), [v.text for v in check.findall(_q("CheckValue"))]
    numeric = schema.get("type") in ("integer", "number")
    message = _text(check, "ErrorMessage")
    try:
        values = [_coded(schema, (v or "").strip()) for v in values]
    except ValueError:
        conversion.warn(where, f"range check {comparator} {values} does not fit the data type; left out")
        return
    if check.get("SoftHard") == "Soft":
        if comparator in _OPS and len(values) == 1 and (numeric or comparator in ("EQ", "NE")):
            name = where.rsplit("/", 1)[1]
            literal = repr(values[0]) if not isinstance(values[0], str) else "'" + values[0].replace("'", "\\'") + "'"
            extra.setdefault("warnings", []).append({
                "expect": f"{name} {_OPS[comparator]} {literal}",
                "message": (message or f"expected {_OPS[comparator]} {values[0]}")[:500]})
            return
    elif comparator in _BOUNDS and numeric and len(values) == 1:
        schema[_BOUNDS[comparator]] = values[0]
        return
    elif comparator == "IN" and values:
        schema["enum"] = [v for v in schema.get("enum", values) if v in values]
        return
    conversion.warn(where, f"range check {comparator} {values} ({check.get('SoftHard')}) is not converted")


def _schedule(event):
    """A visit's day and window from the ``ecrf.day``, ``ecrf.window_before`` and ``ecrf.window_after``
    Alias elements of a StudyEventDef ecrf wrote (windows of 0 left out, as in study.json)."""
    from ecrf.exchange.export_odm import SCHEDULE

    aliases = {a.get("Context"): a.get("Name") for a in event.findall(_q("Alias"))}
    found = {}
    for name in SCHEDULE:
        text = (aliases.get(f"ecrf.{name}") or "").strip()
        if text.lstrip("-").isdigit() and (name == "day" or int(text)):
            found[name] = int(text)
    return found


def _study(conversion, study_id, title, study_el, mdv, defs, form_keys, ecrf):
    protocol = mdv.find(_q("Protocol"))
    order = [r.get("StudyEventOID") for r in _ordered(protocol.findall(_q("StudyEventRef")))] \
        if protocol is not None else []
    order += [oid for oid in defs["StudyEventDef"] if oid not in order]
    name = study_el.find(f"{_q('GlobalVariables')}/{_q('StudyName')}")
    study = {"id": study_id, "title": (title or (name.text if name is not None else "") or study_id).strip()[:500]}
    visits, log_forms, unscheduled, taken = [], [], [], set()
    for oid in order:
        event = defs["StudyEventDef"].get(oid)
        if event is None:
            conversion.warn(f"StudyEventRef {oid}", "the event is not defined; skipped")
            continue
        forms = [form_keys[r.get("FormOID")] for r in _ordered(event.findall(_q("FormRef")))
                 if form_keys[r.get("FormOID")] in conversion.forms]
        kind = event.get("Type", "Scheduled")
        if kind == "Common":
            log_forms += [f for f in forms if f not in log_forms]
            continue
        if kind == "Unscheduled":
            unscheduled += [f for f in forms if f not in unscheduled]
            continue
        if event.get("Repeating") == "Yes":
            conversion.warn(f"StudyEventDef {oid}", "a repeating event is one visit in ecrf "
                                                    "(add unscheduled visits for repeats)")
        visit = {"id": make_key(_own_id(oid, "SE.", ecrf), taken, "visit"),
                 "label": (event.get("Name") or _text(event) or oid)[:500], "forms": forms}
        if ecrf:
            visit |= _schedule(event)
            if _text(event):
                visit["description"] = _text(event)[:2000]
        visits.append(visit)
    for visit in visits:
        moved = [f for f in visit["forms"] if f in log_forms]
        if moved:
            conversion.warn(f"visit {visit['id']}", f"form(s) {', '.join(moved)} are also in a common "
                                                     "event: kept as log forms only")
            visit["forms"] = [f for f in visit["forms"] if f not in log_forms]
    if not visits:
        raise ConversionRefused([("Protocol", "the study has no scheduled event to become a visit")])
    if all("day" in v for v in visits):
        study["visits"] = visits
    else:
        study["visits"] = [dict(v, day=i) for i, v in enumerate(visits)]
        conversion.warn("study.json", "ODM carries no schedule: visit days are their order (0, 1, 2, ...); "
                                      "set each visit's day and window in study.json")
    if log_forms:
        study["log_forms"] = log_forms
    if unscheduled:
        study["unscheduled_forms"] = unscheduled
    used = {f for v in visits for f in v["forms"]} | set(log_forms) | set(unscheduled)
    for key in list(conversion.forms):
        if key not in used:
            conversion.warn(key, "the form is in no event; left out")
            del conversion.forms[key]
    return study


def import_odm(path, study_id, output, *, title=None, force=False):
    """Convert the ODM file at ``path`` and write the study to ``output``; return the Conversion
    and the study as loaded from the folder written."""
    from ecrf.exchange.studyfiles import write_study

    conversion = convert_odm(parse_odm(path), study_id, title)
    return conversion, write_study(conversion, output, force=force)
