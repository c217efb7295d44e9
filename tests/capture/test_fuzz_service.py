"""Generated values thrown at every field of every reference form through save_form: each save either
stores a document that is valid against its form version, or is refused field by field and stores
nothing; no other exception, ever."""
import datetime as dt

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from audit import head
from ecrf.capture.service import enrol_subject, save_form
from ecrf.capture.validate import validate_document
from ecrf.definitions.model import thaw
from ecrf.errors import Invalid
from ecrf.formgen import layout_for
from ecrf.models import FormRecord
from ecrf.paths import resource
from ecrf.studies import add_site

FORMS = resource("forms")
STUDIES = sorted(p.name for p in FORMS.iterdir() if (p / "study.json").is_file())
NASTY = ["<script>alert(1)</script>", "\" onmouseover=\"x", "' OR 1=1 --", "\x00", "\ud800", "NaN",
         "1e999", "-0", "", " ", "２０２４-０３-１５", "2024-02-30", "24:00", "x" * 5000, "😀" * 50]
JUNK = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
              st.sampled_from(NASTY)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)


def _plausible(spec):
    """Values near what the field expects (some valid, some just outside the rules)."""
    kind = spec.kind
    if spec.choices:
        return st.sampled_from([c.value for c in spec.choices] + ["?", 99])
    if kind == "choices":
        return st.lists(st.sampled_from([c.value for c in spec.choices] or ["a"]), max_size=4)
    if kind in ("integer", "number"):
        return st.one_of(st.integers(-10, 400), st.floats(-10, 400, allow_nan=False))
    if kind in ("date", "partial-date"):
        return st.one_of(st.dates().map(dt.date.isoformat), st.sampled_from(["2024", "2024-03", "2024-13-01"]))
    if kind == "datetime":
        return st.sampled_from(["2024-03-15T10:00:00+01:00", "2024-03-15T10:00:00Z", "2024-03-15T10:00"])
    if kind == "time":
        return st.sampled_from(["10:00:00+01:00", "10:00", "25:00:00Z"])
    if kind == "group":
        row = st.dictionaries(st.sampled_from([c.name for c in spec.columns] + ["extra"]),
                              st.one_of(*(_plausible(c) for c in spec.columns)), max_size=4)
        return st.lists(row, max_size=3)
    return st.one_of(st.text(max_size=60), st.sampled_from(NASTY))


def submissions(layout):
    """(data, missing, complete): plausible values for some fields, and sometimes junk for one
    field (or an unknown one), so that both stored and refused saves happen."""
    fields = {spec.name: _plausible(spec) for spec in layout.fields}
    junk = st.tuples(st.sampled_from([s.name for s in layout.fields] + ["not_a_field"]), JUNK)
    data = st.tuples(st.fixed_dictionaries({}, optional=fields), st.one_of(st.none(), junk)).map(
        lambda pair: dict(pair[0], **({pair[1][0]: pair[1][1]} if pair[1] else {})))
    flags = st.dictionaries(
        st.sampled_from([f"/{s.name}" for s in layout.fields] + ["/nope", "nope"]),
        st.one_of(st.fixed_dictionaries({"flag": st.sampled_from(["not_done", "unknown", "not_applicable"]),
                                         "reason": st.text(max_size=20)}), JUNK), max_size=2)
    return st.tuples(data, st.one_of(st.none(), st.none(), flags), st.booleans())


def _where(spec, form_id):
    """The first visit collecting the form that every subject has ("" for a log form; None when
    only visits restricted to an arm collect it: entering those needs an allocated subject, which
    tests/randomization/test_schedule.py covers)."""
    if form_id in spec.log_forms:
        return ""
    return next((v.id for v in spec.visits if form_id in v.forms and not v.arms), None)


@pytest.mark.parametrize("study", STUDIES)
def test_generated_submissions_store_valid_documents_or_nothing(study, load_study, db, actor):
    spec = load_study(study)
    if not spec.sites:
        add_site(db, actor, study, "01", "Site one")
    subject = enrol_subject(db, actor, study, spec.sites[0].id if spec.sites else "01").key
    stored_forms = []
    for form_id, form_def in sorted(spec.forms.items()):
        layout = layout_for(form_def)
        visit = _where(spec, form_id)
        if visit is None:
            continue
        validator = jsonschema.Draft202012Validator(thaw(form_def.schema),
                                                    format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)

        @settings(max_examples=12, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(submissions(layout))
        def throw(submission):
            data, missing, complete = submission
            record = db.scalar(select(FormRecord).where(FormRecord.form_key == form_id,
                                                        FormRecord.visit_key == visit))
            before = (record.version, dict(record.data)) if record is not None else None
            log = head(db.connection())
            try:
                result = save_form(db, actor, study, subject, visit, form_id, data, complete=complete,
                                   missing=missing, reason="generated", seq=1 if record is not None else None)
            except Invalid as exc:
                assert exc.errors and all(isinstance(p, str) and isinstance(m, str) for p, m in exc.errors)
                db.expire_all()
                after = db.scalar(select(FormRecord).where(FormRecord.form_key == form_id,
                                                           FormRecord.visit_key == visit))
                assert (None if after is None else (after.version, dict(after.data))) == before
                assert head(db.connection()) == log
                return
            document = result.record.data
            assert set(document) <= set(form_def.schema["properties"])
            # valid against its form version: required fields may be empty in a draft, or flagged
            assert [e for e in validator.iter_errors(document)
                    if e.validator not in ("required", "dependentRequired")] == []
            assert validate_document(form_def, document, complete, missing=result.record.missing) == []
            stored_forms.append(form_id)

        throw()
    assert stored_forms, "no generated submission was valid: the strategies need a look"


@pytest.mark.parametrize("study", STUDIES)
def test_the_compiled_fast_path_judges_every_form_as_jsonschema_does(study, load_study, monkeypatch):
    """validate_document asks jsonschema only when the compiled predicate cannot say "valid": the
    problems it reports are the same with and without that predicate, on every reference form."""
    from ecrf.capture import validate

    spec = load_study(study)
    compiled = validate._valid_fast
    for form_id, form_def in sorted(spec.forms.items()):
        for complete in (False, True):
            compiled(form_def, {}, complete)
            assert validate._PREDICATES[(form_def.hash, complete)] is not None, f"{form_id}: no fast path"

        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(submissions(layout_for(form_def)))
        def judge(submission):
            data, missing, complete = submission
            monkeypatch.setattr(validate, "_valid_fast", compiled)
            fast = validate.validate_document(form_def, data, complete, missing=missing)
            monkeypatch.setattr(validate, "_valid_fast", lambda *args: False)
            slow = validate.validate_document(form_def, data, complete, missing=missing)
            assert fast == slow

        judge()
