"""What an export holds, decided once for every format: the tables (one per form, one per repeating
group) and their columns, each with the variable name, the ODM ItemDef OID, the label, the data type,
the code list, the unit and the range.

A column maps a stored form document to one cell:

* a field's value (partial dates and times as written, booleans as 1/0);
* ``<field>_label``: the code-list label of a coded value (CSV and the statistics formats only;
  ODM and Dataset-JSON carry the labels in their metadata);
* ``<field>_missing`` and ``<field>_missing_reason``: the missing-data flag and its reason, for
  fields that offer flags (never a magic value in the value column);
* ``<field>__<code>``: one 1/0 column per option of a multiple-choice field.

OIDs follow one pattern so that ODM, Dataset-JSON and the dictionary agree: ``IT.<form>.<field>``
(``.MISSING``, ``.REASON``, ``.<code>`` appended) and ``IT.<form>.<group>.<item>`` inside a repeating
group; ``IG.<form>`` and ``IG.<form>.<group>``; ``F.<form>``; ``SE.<visit>``.
"""
import dataclasses
import functools
import json
import re

from ecrf.definitions.model import code_values, thaw
from ecrf.formgen.build import resolve

#: The CSV/statistics names of the key columns of a form table, in order.
KEY_COLUMNS = ("subject", "site", "visit", "visit_date", "record", "form_version", "status")
#: Key columns of a repeating group's child table: its parent row, then the row number.
CHILD_KEY_COLUMNS = ("subject", "site", "visit", "record", "row")
#: Data types whose stored value is the cell as it is (when it is a number or a string).
_PLAIN = frozenset({"integer", "float", "text", "date", "datetime", "time", "partialDate"})
_PARTIAL_DATE = re.compile(r"\[0-9\]\{4\}")


@dataclasses.dataclass(frozen=True)
class Column:
    """One variable of a table."""

    name: str
    oid: str
    label: str
    #: ODM 1.3.2 DataType: text, integer, float, boolean, date, datetime, time, partialDate.
    data_type: str
    #: The field (top-level property, or item of a repeating group) the column reads.
    field: str
    #: "value", "label", "missing", "reason" or "choice".
    role: str = "value"
    #: For a "choice" column: the option's code (as text).
    code: str | None = None
    #: The code list: ((code as text, label), ...) or None.
    codes: tuple | None = None
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    derived: bool = False
    #: The JSON type of the stored codes (so a code list's value goes back as it was stored).
    code_type: str = "text"
    #: For a "choice" column: the multiple-choice field's own title (``label`` adds the option's).
    field_title: str | None = None

    def cell(self, data, missing):
        """This column's cell of one stored document (None when empty)."""
        return self.reader(data, missing)

    @functools.cached_property
    def reader(self):
        """``cell`` as a function of (data, missing), the common case made cheap: a plain value."""
        if self.role == "value" and self.data_type in _PLAIN:
            field, general = self.field, self._cell

            def plain(data, missing):
                value = data.get(field)
                if value is None or value.__class__ in (int, str, float):
                    return value
                return general(data, missing)

            return plain
        if self.role == "label" and self.code_type != "boolean":
            field, labels = self.field, self._labels()

            def label(data, _missing):
                value = data.get(field)
                return None if value is None else labels.get(value)

            return label
        return self._cell

    def _labels(self):
        """Stored value (as stored, and as text) -> label."""
        labels = {}
        for code, text in self.codes or ():
            labels[code] = text
            try:
                parsed = json.loads(code)
            except ValueError:
                continue
            if isinstance(parsed, (int, float)) and not isinstance(parsed, bool):
                labels[parsed] = text
        return labels

    def _cell(self, data, missing):
        if self.role == "missing" or self.role == "reason":
            flag = missing.get(f"/{self.field}") if missing else None
            if not flag:
                return None
            return flag.get("flag") if self.role == "missing" else flag.get("reason")
        value = data.get(self.field)
        if value is None:
            return None
        if self.role == "choice":
            chosen = {v if isinstance(v, str) else json.dumps(v) for v in value} \
                if isinstance(value, list) else set()
            return 1 if self.code in chosen else 0
        if self.role == "label":
            text = value if isinstance(value, str) else json.dumps(value)
            return dict(self.codes or ()).get(text)
        if isinstance(value, bool):
            return 1 if value else 0
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return value

    @property
    def in_metadata(self):
        """Whether ODM and Dataset-JSON carry this column (label columns they express as code lists)."""
        return self.role != "label"


@dataclasses.dataclass(frozen=True)
class Table:
    """One CSV file, Dataset-JSON dataset, statistics file: a form, or a form's repeating group."""

    form: str
    #: The repeating group's field for a child table, else None.
    group: str | None
    name: str
    oid: str
    label: str
    columns: tuple

    @property
    def keys(self):
        return CHILD_KEY_COLUMNS if self.group else KEY_COLUMNS

    def rows_of(self, data, missing):
        """The cells of one stored document: one row for a form table, one per group row for a child."""
        readers = self.readers
        if self.group is None:
            yield [read(data, missing) for read in readers]
            return
        rows = data.get(self.group)
        for row in rows if isinstance(rows, list) else ():
            row = row if isinstance(row, dict) else {}
            yield [read(row, None) for read in readers]

    @functools.cached_property
    def readers(self):
        return [c.reader for c in self.columns]


def _data_type(schema):
    kind = schema.get("type")
    if isinstance(kind, (list, tuple)):
        kind = next((k for k in kind if k != "null"), "string")
    fmt = schema.get("format")
    widget = (schema.get("x-ecrf") or {}).get("widget")
    if kind == "integer":
        return "integer"
    if kind == "number":
        return "float"
    if kind == "boolean":
        return "boolean"
    if kind == "string" and fmt == "date":
        return "date"
    if kind == "string" and fmt == "date-time":
        return "datetime"
    if kind == "string" and fmt == "time":
        return "time"
    if widget == "partial-date" or (kind == "string" and _PARTIAL_DATE.search(schema.get("pattern", ""))):
        return "partialDate"
    return "text"


def _codes(schema):
    values = code_values(schema)
    if values is None:
        return None
    target = schema.get("items", schema) if schema.get("type") == "array" else schema
    labels = dict((target.get("x-ecrf") or {}).get("labels") or (schema.get("x-ecrf") or {}).get("labels") or {})
    if not labels and "oneOf" in target:
        labels = {(o["const"] if isinstance(o["const"], str) else json.dumps(o["const"])): o.get("title")
                  for o in target["oneOf"]}
    return tuple((v, labels.get(v) or v) for v in values)


def _code_type(schema):
    target = schema.get("items", schema) if schema.get("type") == "array" else schema
    values = target.get("enum") or [o.get("const") for o in target.get("oneOf", ())]
    if values and all(isinstance(v, bool) for v in values):
        return "boolean"
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "integer"
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "float"
    return "text"


def _columns(form_id, prefix, name, title, schema, root, *, top):
    """The columns of one field (``prefix`` is the OID prefix: ``IT.<form>`` or ``IT.<form>.<group>``)."""
    schema = resolve(thaw(schema), root)
    x = schema.get("x-ecrf") or {}
    oid = f"{prefix}.{name}"
    derived = "calculate" in x
    unit = x.get("unit")
    if schema.get("type") == "array":
        items = resolve(schema.get("items") or {}, root)
        codes = _codes(schema)
        if codes is not None:  # multiple choice: one 1/0 column per option
            return [Column(f"{name}__{code}", f"{oid}.{code}", f"{title}: {label}", "integer", name,
                           role="choice", code=code, derived=derived, field_title=title) for code, label in codes]
        if items.get("type") == "object":
            return []  # a repeating group: its own table
        return [Column(name, oid, title, "text", name, derived=derived)]
    codes = _codes(schema)
    code_type = _code_type(schema) if codes else "text"
    data_type = code_type if codes else _data_type(schema)
    minimum = schema.get("minimum", schema.get("exclusiveMinimum"))
    maximum = schema.get("maximum", schema.get("exclusiveMaximum"))
    columns = [Column(name, oid, title, data_type, name, codes=codes, unit=unit, minimum=minimum,
                      maximum=maximum, derived=derived, code_type=code_type)]
    if codes:
        columns.append(Column(f"{name}_label", f"{oid}.LABEL", f"{title} (label)", "text", name,
                              role="label", codes=codes))
    flags = tuple(x.get("missing") or ()) if top and not derived else ()
    if flags:
        flag_codes = tuple((f, f.replace("_", " ")) for f in flags)
        columns.append(Column(f"{name}_missing", f"{oid}.MISSING", f"{title}: missing-data flag", "text",
                              name, role="missing", codes=flag_codes))
        columns.append(Column(f"{name}_missing_reason", f"{oid}.REASON", f"{title}: why missing", "text",
                              name, role="reason"))
    return columns


def form_tables(form_def):
    """The tables of one form: the form itself, then one per repeating group."""
    root = thaw(form_def.schema)
    columns, children = [], []
    for field in form_def.fields:
        schema = resolve(thaw(field.schema), root)
        columns.extend(_columns(form_def.id, f"IT.{form_def.id}", field.name, field.title or field.name,
                                schema, root, top=True))
        items = resolve(schema.get("items") or {}, root) if schema.get("type") == "array" else {}
        if schema.get("type") == "array" and items.get("type") == "object" and code_values(schema) is None:
            prefix = f"IT.{form_def.id}.{field.name}"
            group_columns = []
            for item, item_schema in (items.get("properties") or {}).items():
                item_schema = resolve(item_schema, root)
                group_columns.extend(_columns(form_def.id, prefix, item, item_schema.get("title") or item,
                                              item_schema, root, top=False))
            children.append(Table(form_def.id, field.name, f"{form_def.id}__{field.name}",
                                  f"IG.{form_def.id}.{field.name}", field.title or field.name,
                                  tuple(group_columns)))
    return [Table(form_def.id, None, form_def.id, f"IG.{form_def.id}", form_def.title or form_def.id,
                  tuple(columns)), *children]


def study_tables(spec, forms):
    """Every table of the chosen forms of a loader Study, forms in the order asked."""
    return [table for form_id in forms for table in form_tables(spec.forms[form_id])]
