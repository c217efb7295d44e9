"""Read a study folder all-or-nothing.

``load_study(path)`` returns a frozen Study only when every file is valid; otherwise it raises
StudyInvalid carrying every problem found, each as (file, JSON pointer, message). Nothing is half
loaded: callers store a Study only after this returned.

The checks, in order: the folder and its files (existence, size, UTF-8, JSON syntax with line and
column, duplicate keys), the meta-schemas of schemas/, then what a meta-schema cannot say: forms
named but missing, files never used, duplicate ids, windows, references to arms, sections and fields,
``$ref`` that leaves the file or goes round in a circle, expressions that do not parse or read fields
that do not exist, and calculations that depend on themselves.
"""
import dataclasses
import json
import re
from pathlib import Path

from ecrf.definitions import metaschema
from ecrf.definitions.model import (FieldDef, FormDef, Site, Study, Visit, code_values, content_hash,
                                   freeze, ref_target)
from ecrf.rules import ExpressionError, parse

#: Default largest file accepted (ECRF_MAX_DEFINITION_BYTES overrides it).
MAX_FILE_BYTES = 1024 * 1024
#: A study folder with more files than this is refused before any is read.
MAX_FILES = 500

#: The CDISC CDASH variables an AE log named by ``safety.ae_form`` must define.
AE_REQUIRED_VARIABLES = (
    "aeterm", "aestdat", "aeendat", "aeongo", "aetoxgr", "aeser", "aesdth", "aeslife", "aeshosp",
    "aesdisab", "aescong", "aesmie", "aerel", "aeacn", "aeout", "aecontrt", "saeawdtc", "saenarr",
)

#: Form ids (and field names): at most 50 characters, so a form version label ("<form>@<12 hex>")
#: fits the 64 characters the database gives it.
FORM_ID = re.compile(r"^[a-z][a-z0-9_]{0,49}$")


@dataclasses.dataclass(frozen=True, order=True)
class DefinitionError:
    """One problem in a study folder."""

    file: str
    pointer: str
    message: str

    def __str__(self):
        where = f"{self.file}: {self.pointer}" if self.pointer else self.file
        return f"{where}: {self.message}"


class StudyInvalid(Exception):
    """A study folder that must not be loaded; ``errors`` lists every problem found."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class _Problems:
    def __init__(self):
        self.errors = []

    def add(self, file, pointer, message):
        self.errors.append(DefinitionError(str(file), pointer, message))


def _display(path):
    """A path as the user would recognise it: relative to the working folder when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _esc(token):
    return str(token).replace("~", "~0").replace("/", "~1")


def _ptr(*parts):
    return "".join("/" + _esc(p) for p in parts)


# --- reading files --------------------------------------------------------------------------------

class _DuplicateKey(ValueError):
    def __init__(self, key):
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _refuse_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def read_json(path, problems, max_bytes=MAX_FILE_BYTES):
    """Parse one JSON file, recording any problem; return the value or None."""
    shown = _display(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            problems.add(shown, "", f"file is {size} bytes, larger than the limit of {max_bytes} bytes")
            return None
        raw = path.read_bytes()
    except OSError as exc:
        problems.add(shown, "", f"cannot read the file: {exc.strerror or exc}")
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add(shown, "", f"not UTF-8 text (byte {exc.start + 1})")
        return None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        problems.add(shown, "", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")
    except _DuplicateKey as exc:
        line = _second_occurrence_line(text, exc.key)
        at = f" (line {line})" if line else ""
        problems.add(shown, "", f"duplicate key {exc.key!r} in one object{at}")
    except (ValueError, RecursionError) as exc:
        problems.add(shown, "", f"invalid JSON: {exc}")
    return None


def _second_occurrence_line(text, key):
    hits = [m.start() for m in re.finditer(re.escape(json.dumps(key)) + r"\s*:", text)]
    return text.count("\n", 0, hits[1]) + 1 if len(hits) > 1 else None


# --- the study ------------------------------------------------------------------------------------

def load_study(path, max_bytes=MAX_FILE_BYTES):
    """Load and fully validate the study folder at ``path``; raise StudyInvalid on any problem."""
    folder = Path(path)
    problems = _Problems()
    if not folder.exists():
        raise StudyInvalid([DefinitionError(_display(folder), "", "no such file or folder")])
    if folder.is_file():
        if folder.name == "study.json":
            folder = folder.parent
        else:
            raise StudyInvalid([DefinitionError(
                _display(folder), "", "a study is a folder holding study.json; give the folder")])
    study_file = folder / "study.json"
    if not study_file.is_file():
        raise StudyInvalid([DefinitionError(_display(folder), "", "no study.json in this folder")])
    json_files = sorted(p for p in folder.iterdir() if p.suffix == ".json" and p.is_file())
    if len(json_files) > MAX_FILES:
        raise StudyInvalid([DefinitionError(
            _display(folder), "", f"{len(json_files)} files, more than the limit of {MAX_FILES}")])

    # read_json gives None both for a file it could not read (and reported) and for a file holding
    # JSON null, so whether a file was read is told by whether it added a problem.
    before = len(problems.errors)
    study_doc = read_json(study_file, problems, max_bytes)
    study_read = len(problems.errors) == before
    form_docs = {}
    for file in json_files:
        if file.name == "study.json":
            continue
        if not FORM_ID.match(file.stem):
            problems.add(_display(file), "", "a form file is named <form-id>.json, with a form id "
                         "of at most 50 lower-case letters, digits and _ starting with a letter")
            continue
        before = len(problems.errors)
        doc = read_json(file, problems, max_bytes)
        if len(problems.errors) == before:
            form_docs[file.stem] = doc

    # study.json is judged on its own: a broken form file must not hide its problems, nor a broken
    # study.json those of the forms (every problem is reported, not just the first).
    study_name = _display(study_file)
    study_ok = False
    if study_read:
        if not isinstance(study_doc, dict):
            problems.add(study_name, "/", "study.json must hold a JSON object")
        else:
            before = len(problems.errors)
            for pointer, message in metaschema.iter_errors(metaschema.STUDY_SCHEMA, study_doc):
                problems.add(study_name, pointer, message)
            study_ok = len(problems.errors) == before

    forms = {}
    for form_id, doc in form_docs.items():
        name = _display(folder / f"{form_id}.json")
        before = len(problems.errors)
        _check_form(name, doc, problems)
        if len(problems.errors) == before:
            forms[form_id] = doc

    if study_ok:
        if study_doc["id"] != folder.name:
            problems.add(study_name, "/id",
                         f"the study id {study_doc['id']!r} differs from its folder name {folder.name!r}")
        _check_study(study_name, study_doc, folder, form_docs, forms, problems)

    if problems.errors:
        raise StudyInvalid(sorted(set(problems.errors), key=problems.errors.index))
    return _build(study_doc, forms)


def _check_study(name, study, folder, form_docs, valid_forms, problems):
    used = {}

    def need_form(form_id, pointer):
        used.setdefault(form_id, pointer)
        if form_id not in form_docs and not (folder / f"{form_id}.json").exists():
            problems.add(name, pointer, f"form {form_id!r} has no file {form_id}.json")

    _unique(name, "/visits", [v["id"] for v in study["visits"]], "visit id", problems)
    _unique(name, "/arms", [a["id"] for a in study.get("arms", [])], "arm id", problems)
    _unique(name, "/sites", [s["id"] for s in study.get("sites", [])], "site id", problems)
    arm_ids = {a["id"] for a in study.get("arms", [])}
    visit_ids = {v["id"] for v in study["visits"]}
    log_forms = study.get("log_forms", [])

    for i, visit in enumerate(study["visits"]):
        before, after = visit.get("window_before", 0), visit.get("window_after", 0)
        if before < 0 or after < 0:
            problems.add(name, _ptr("visits", i), "the visit window has a negative width")
        for j, form_id in enumerate(visit["forms"]):
            need_form(form_id, _ptr("visits", i, "forms", j))
            if form_id in log_forms:
                problems.add(name, _ptr("visits", i, "forms", j),
                             f"form {form_id!r} is a log form and cannot also belong to a visit")
        for j, arm in enumerate(visit.get("arms", [])):
            if arm not in arm_ids:
                problems.add(name, _ptr("visits", i, "arms", j), f"no arm {arm!r} in /arms")
    for j, form_id in enumerate(log_forms):
        need_form(form_id, _ptr("log_forms", j))
    for j, form_id in enumerate(study.get("unscheduled_forms", [])):
        need_form(form_id, _ptr("unscheduled_forms", j))

    randomization = study.get("randomization")
    if randomization:
        if not arm_ids:
            problems.add(name, "/randomization", "randomization needs /arms")
        for arm in randomization["ratio"]:
            if arm not in arm_ids:
                problems.add(name, _ptr("randomization", "ratio", arm), f"no arm {arm!r} in /arms")
        for arm in arm_ids - set(randomization["ratio"]):
            problems.add(name, "/randomization/ratio", f"arm {arm!r} has no allocation weight")
        if "visit" in randomization and randomization["visit"] not in visit_ids:
            problems.add(name, "/randomization/visit", f"no visit {randomization['visit']!r}")
        weight = sum(randomization["ratio"].values())
        for j, size in enumerate(randomization.get("block_sizes", [])):
            if size % weight:
                problems.add(name, _ptr("randomization", "block_sizes", j),
                             f"block size {size} is not a multiple of the ratio total {weight}")
        _check_randomization(name, study, randomization, arm_ids, valid_forms, problems)
    masked = (study.get("blinding") or {}).get("masking", "none") != "none"
    for i, visit in enumerate(study["visits"]):
        if masked and visit.get("arms"):
            problems.add(name, _ptr("visits", i, "arms"),
                         f"visit {visit['id']!r} is restricted to arms in a masked study, which would show "
                         "every blinded person the allocation: give both arms the visit instead")

    subjects = study.get("subjects", {})
    template = subjects.get("id_template")
    if template is not None:
        leftover = re.sub(r"\{site\}|\{n(:0?[1-9])?\}", "", template)
        if "{" in leftover or "}" in leftover or "{n" not in template:
            problems.add(name, "/subjects/id_template",
                         "the template may use only {site} and {n} (or {n:03}), and must use {n}")
    if "id_pattern" in subjects:
        try:
            re.compile(subjects["id_pattern"])
        except re.error as exc:
            problems.add(name, "/subjects/id_pattern", f"not a valid regular expression: {exc}")

    eligibility = study.get("eligibility")
    if eligibility:
        need_form(eligibility["form"], "/eligibility/form")
        props = valid_forms.get(eligibility["form"], {}).get("properties")
        if props is not None:
            for key in ("inclusion", "exclusion"):
                for j, field in enumerate(eligibility.get(key, [])):
                    if field not in props:
                        problems.add(name, _ptr("eligibility", key, j),
                                     f"form {eligibility['form']!r} has no field {field!r}")

    safety = study.get("safety")
    if safety:
        ae = safety["ae_form"]
        need_form(ae, "/safety/ae_form")
        if ae not in log_forms:
            problems.add(name, "/safety/ae_form", f"the AE form {ae!r} must also be one of /log_forms")
        props = valid_forms.get(ae, {}).get("properties")
        if props is not None:
            missing = [v for v in AE_REQUIRED_VARIABLES if v not in props]
            if missing:
                problems.add(name, "/safety/ae_form",
                             f"the AE form {ae!r} lacks the required CDASH variables: {', '.join(missing)}")

    for form_id in sorted(form_docs):
        if form_id not in used:
            problems.add(_display(folder / f"{form_id}.json"), "",
                         "this form is not used by any visit, log_forms, unscheduled_forms or eligibility")


def _check_randomization(name, study, randomization, arm_ids, valid_forms, problems):
    """Method options, kits, and stratification factors: ``site`` or ``<form>.<field>`` naming a
    code-list or boolean field of a visit form collected no later than the randomization visit."""
    method = randomization.get("method", "permuted_blocks")
    if method != "permuted_blocks":
        for key in ("block_sizes", "block_order"):
            if key in randomization:
                problems.add(name, _ptr("randomization", key), f"{key} applies only to permuted_blocks")
    if method != "minimization" and "minimization" in randomization:
        problems.add(name, "/randomization/minimization", "minimization options need \"method\": \"minimization\"")
    factors = randomization.get("stratify_by", [])
    if method == "minimization" and not factors:
        problems.add(name, "/randomization/stratify_by", "minimization needs at least one factor")
    for factor in (randomization.get("minimization") or {}).get("weights", {}):
        if factor not in factors:
            problems.add(name, _ptr("randomization", "minimization", "weights", factor),
                         f"{factor!r} is not one of /randomization/stratify_by")
    kits = randomization.get("kits", {})
    seen = {}
    for arm, numbers in kits.items():
        if arm not in arm_ids:
            problems.add(name, _ptr("randomization", "kits", arm), f"no arm {arm!r} in /arms")
        for j, kit in enumerate(numbers):
            if kit in seen:
                problems.add(name, _ptr("randomization", "kits", arm, j),
                             f"kit {kit!r} is listed twice (also for arm {seen[kit]!r})")
            seen[kit] = arm
    visits = {v["id"]: v for v in study["visits"]}
    at = visits.get(randomization.get("visit"))
    for j, factor in enumerate(factors):
        if factor == "site":
            continue
        pointer = _ptr("randomization", "stratify_by", j)
        form_id, field = factor.split(".", 1)
        if at is None:
            problems.add(name, pointer, "a field factor needs /randomization/visit, the visit it must precede")
            continue
        before = [v["id"] for v in study["visits"] if v["day"] <= at["day"] and form_id in v["forms"]]
        if not before:
            problems.add(name, pointer, f"form {form_id!r} is not collected at or before the randomization "
                                        f"visit {at['id']!r}")
            continue
        schema = (valid_forms.get(form_id) or {}).get("properties", {}).get(field)
        if form_id in valid_forms and not isinstance(schema, dict):
            problems.add(name, pointer, f"form {form_id!r} has no field {field!r}")
        elif isinstance(schema, dict) and schema.get("type") != "boolean" and (
                schema.get("type") == "array" or code_values(schema) is None):
            problems.add(name, pointer, f"field {factor!r} is neither a code list nor a boolean: "
                                        "only those can stratify")


def _unique(name, base, values, what, problems):
    seen = set()
    for i, value in enumerate(values):
        if value in seen:
            problems.add(name, _ptr(*base.strip("/").split("/"), i, "id"), f"duplicate {what} {value!r}")
        seen.add(value)


# --- one form -------------------------------------------------------------------------------------

def _check_form(name, doc, problems):
    if not isinstance(doc, dict):
        problems.add(name, "/", "a form file must hold a JSON Schema object")
        return
    errors = list(metaschema.iter_errors(metaschema.FORM_SCHEMA, doc))
    for pointer, message in errors:
        problems.add(name, pointer, message)
    if errors:
        return
    if doc.get("type") != "object" or not isinstance(doc.get("properties"), dict):
        problems.add(name, "/type", 'a form schema must be "type": "object" with "properties"')
        return
    _check_refs(name, doc, problems)
    props = doc["properties"]
    for i, field in enumerate(doc.get("required", [])):
        if field not in props:
            problems.add(name, _ptr("required", i), f"required field {field!r} is not in /properties")
    for field, schema in props.items():
        if not FORM_ID.match(field):
            problems.add(name, _ptr("properties", field),
                         "field names are at most 50 lower-case letters, digits and _ starting with a letter")
        if not isinstance(schema, dict):
            problems.add(name, _ptr("properties", field), "a field's schema must be a JSON object")
    _check_conditions(name, doc, props, problems)
    _check_x_ecrf(name, doc, props, problems)


def _walk_schemas(schema, pointer=""):
    """Yield (pointer, subschema) for ``schema`` and every schema nested in it."""
    if not isinstance(schema, dict):
        return
    yield pointer, schema
    for key in ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas"):
        for sub, value in (schema.get(key) or {}).items():
            yield from _walk_schemas(value, f"{pointer}/{key}/{_esc(sub)}")
    for key in ("items", "additionalProperties", "not", "if", "then", "else", "contains",
                "propertyNames", "unevaluatedItems", "unevaluatedProperties"):
        if isinstance(schema.get(key), dict):
            yield from _walk_schemas(schema[key], f"{pointer}/{key}")
    for key in ("allOf", "anyOf", "oneOf", "prefixItems"):
        for i, value in enumerate(schema.get(key) or []):
            yield from _walk_schemas(value, f"{pointer}/{key}/{i}")
    xecrf = schema.get("x-ecrf")
    if isinstance(xecrf, dict) and isinstance(xecrf.get("show_if"), dict):
        yield from _walk_schemas(xecrf["show_if"], f"{pointer}/x-ecrf/show_if")


def _check_refs(name, doc, problems):
    """Only local ``$ref``s to existing places, and none that leads back to itself."""
    refs, shown = {}, {}
    anchors = {schema["$anchor"]: pointer for pointer, schema in _walk_schemas(doc)
               if isinstance(schema.get("$anchor"), str)}
    for pointer, schema in _walk_schemas(doc):
        ref = schema.get("$ref")
        if ref is None:
            continue
        if not ref.startswith("#"):
            problems.add(name, f"{pointer}/$ref",
                         f"{ref!r} leaves the file: only local references such as #/$defs/x are allowed")
            continue
        if ref == "#" or ref.startswith("#/"):
            target = ref[1:] if ref_target(doc, ref) is not None else None
        else:  # "#name" names an $anchor, not a JSON pointer
            target = anchors.get(ref[1:])
        if target is None:
            problems.add(name, f"{pointer}/$ref", f"{ref!r} points to nothing in this file")
            continue
        refs[pointer or "#"] = target or "#"
        shown[pointer or "#"] = ref
    # A cycle: following refs (or the nesting from a ref target to refs inside it) returns to a start.
    targets = {}
    for source in refs:
        targets[source] = [other for other in refs if other == refs[source] or
                           other.startswith(refs[source] + "/") or refs[source] == "#"]
    for start in refs:
        stack, seen = [start], set()
        while stack:
            node = stack.pop()
            for nxt in targets.get(node, []):
                if nxt == start:
                    problems.add(name, f"{start}/$ref" if start != "#" else "/$ref",
                                 f"circular $ref: {shown[start]!r} leads back to itself")
                    stack = []
                    break
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)


def _condition_fields(condition):
    """Field names a JSON Schema condition on the form data refers to (top level)."""
    names = set(condition.get("required", []))
    names |= set(condition.get("properties", {}))
    names |= set(condition.get("dependentRequired", {}))
    for values in condition.get("dependentRequired", {}).values():
        names |= set(values)
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in condition.get(key, []):
            if isinstance(sub, dict):
                names |= _condition_fields(sub)
    for key in ("not", "if", "then", "else"):
        if isinstance(condition.get(key), dict):
            names |= _condition_fields(condition[key])
    return names


def _check_conditions(name, doc, props, problems):
    def check(condition, pointer):
        for field in sorted(_condition_fields(condition)):
            if field not in props:
                problems.add(name, pointer, f"the condition names a field {field!r} that does not exist")

    for key in ("if", "then", "else"):
        if isinstance(doc.get(key), dict):
            check(doc[key], f"/{key}")
    for i, sub in enumerate(doc.get("allOf", [])):
        if isinstance(sub, dict):
            check(sub, f"/allOf/{i}")
    if "dependentRequired" in doc:
        check({"dependentRequired": doc["dependentRequired"]}, "/dependentRequired")
    for field, schema in props.items():
        show_if = schema.get("x-ecrf", {}).get("show_if") if isinstance(schema, dict) else None
        if isinstance(show_if, dict):
            check(show_if, _ptr("properties", field, "x-ecrf", "show_if"))


def _field_exists(props, path):
    schema = props.get(path[0])
    if not isinstance(schema, dict):
        return False
    for part in path[1:]:
        if not isinstance(schema, dict):  # a boolean schema has no fields inside
            return False
        if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
            schema = schema["items"]
        nested = schema.get("properties", {})
        if part not in nested:
            return False
        schema = nested[part]
    return True


def _check_x_ecrf(name, doc, props, problems):
    form_x = doc.get("x-ecrf", {})
    sections = [s["id"] for s in form_x.get("sections", [])]
    _unique(name, "/x-ecrf/sections", sections, "section id", problems)
    for key in ("order", "summary"):
        for i, field in enumerate(form_x.get(key, [])):
            if field not in props:
                problems.add(name, _ptr("x-ecrf", key, i), f"no field {field!r} in /properties")
    for key in ("calculate", "warnings", "show_if", "section", "unit", "decimals"):
        if key in form_x:
            problems.add(name, _ptr("x-ecrf", key), f"{key!r} belongs on a field, not on the form")

    calc_deps = {}
    for field, schema in props.items():
        x = schema.get("x-ecrf") if isinstance(schema, dict) else None
        if not isinstance(x, dict):
            continue
        base = ("properties", field, "x-ecrf")
        for key in ("sections", "order", "summary"):
            if key in x:
                problems.add(name, _ptr(*base, key), f"{key!r} belongs on the form, not on a field")
        if "section" in x and x["section"] not in sections:
            problems.add(name, _ptr(*base, "section"), f"no section {x['section']!r} in /x-ecrf/sections")
        if "labels" in x:
            allowed = code_values(schema)
            if allowed is not None:
                for value in x["labels"]:
                    if value not in allowed:
                        problems.add(name, _ptr(*base, "labels", value),
                                     f"label for {value!r}, which is not one of the field's values")
        if "decimals" in x and schema.get("type") != "number":
            problems.add(name, _ptr(*base, "decimals"), "decimals applies only to a number field")
        if "calculate" in x:
            expr = _check_expression(name, _ptr(*base, "calculate"), x["calculate"], props, problems)
            if expr is not None:
                calc_deps[field] = {path[0] for path in expr.names}
        for i, warning in enumerate(x.get("warnings", [])):
            _check_expression(name, _ptr(*base, "warnings", i, "expect"), warning["expect"], props,
                              problems)
    _check_cycles(name, calc_deps, problems)


def _check_expression(name, pointer, source, props, problems):
    try:
        expr = parse(source)
    except ExpressionError as exc:
        problems.add(name, pointer, f"the expression does not parse: {exc}")
        return None
    for path in expr.names:
        if not _field_exists(props, path):
            problems.add(name, pointer, f"the expression reads {'.'.join(path)!r}, which is not a field")
    return expr


def _check_cycles(name, deps, problems):
    state = {}

    def visit(field, trail):
        if state.get(field) == "done":
            return
        if state.get(field) == "active":
            cycle = trail[trail.index(field):] + [field]
            problems.add(name, _ptr("properties", field, "x-ecrf", "calculate"),
                         f"calculations depend on themselves: {' -> '.join(cycle)}")
            return
        state[field] = "active"
        for dep in sorted(deps.get(field, ())):
            if dep in deps:
                visit(dep, trail + [field])
        state[field] = "done"

    for field in sorted(deps):
        visit(field, [])


# --- building the frozen definition ---------------------------------------------------------------

def _build(study_doc, forms):
    form_defs = {}
    for form_id, doc in sorted(forms.items()):
        required = set(doc.get("required", []))
        fields = tuple(
            FieldDef(name, schema.get("title", name), freeze(schema), name in required)
            for name, schema in doc["properties"].items())
        # The hash covers the form id too: two forms with identical schemas are two versions.
        form_defs[form_id] = FormDef(form_id, doc.get("title", form_id), freeze(doc),
                                     content_hash({"form": form_id, "schema": doc}), fields)
    visits = tuple(
        Visit(v["id"], v["label"], v["day"], v.get("window_before", 0), v.get("window_after", 0),
              tuple(v["forms"]), tuple(v.get("arms", ())))
        for v in study_doc["visits"])
    sites = tuple(Site(s["id"], s["name"], s.get("timezone")) for s in study_doc.get("sites", []))
    arms = tuple(a["id"] for a in study_doc.get("arms", []))
    stored = {"study": study_doc, "forms": {fid: forms[fid] for fid in sorted(forms)}}
    return Study(
        id=study_doc["id"], title=study_doc["title"], visits=visits, forms=freeze(form_defs),
        log_forms=tuple(study_doc.get("log_forms", ())), sites=sites, arms=arms,
        document=freeze(study_doc), hash=content_hash(stored))


def study_from_stored(definition):
    """Rebuild a Study from the JSON stored with a study version (already validated when stored)."""
    return _build(definition["study"], definition["forms"])
