"""Form-engine benchmarks (prints figures; not part of the test run).

    .venv/bin/python bench/forms.py [--rounds 50] [--submissions 2000]

* Compiling every form of the reference studies into its layout and WTForms class: cold (cache
  cleared before each round) and cached (every form asked for again), median over the rounds.
* Validating and normalising one submission of the largest reference form as the form page does it
  (the posted form parsed by WTForms, converted to a JSON document, derived (hidden fields cleared,
  calculations computed) and validated with missing-data flags), against a bare jsonschema
  validation of the same document with a compiled validator, in the same run: medians and ratio.
"""
import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecrf.capture.service import prepare  # noqa: E402
from ecrf.capture.validate import validator_for  # noqa: E402
from ecrf.definitions import load_study  # noqa: E402
from ecrf.definitions.model import canonical_json, thaw  # noqa: E402
from ecrf.formgen import Context, build, layout_for, to_document, to_formdata  # noqa: E402
from ecrf.paths import resource  # noqa: E402
from ecrf.rules.derive import hidden_fields  # noqa: E402

REFERENCE = ("mesrix-ii", "mesrix-more", "om-exosome")


def reference_forms():
    forms = []
    for name in REFERENCE:
        forms.extend(load_study(resource("forms") / name).forms.values())
    return forms


def _value(spec, day):
    schema = spec.schema
    if spec.choices:
        return spec.choices[0].value
    if spec.kind == "choices":
        return [spec.choices[0].value] if spec.choices else None
    if spec.kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", low + 10))
        value = (low + high) / 2
        return int(value) if spec.kind == "integer" else round(value, 1)
    if spec.kind == "date":
        return day.isoformat()
    if spec.kind == "partial-date":
        return day.isoformat()[:7]
    if spec.kind == "datetime":
        return f"{day.isoformat()}T09:30:00+01:00"
    if spec.kind == "time":
        return "09:30:00+01:00"
    if spec.kind == "group":
        row = {c.name: _value(c, day) for c in spec.columns if not c.read_only}
        return [{k: v for k, v in row.items() if v is not None}] * 2
    if "pattern" in schema:
        return {"^([01][0-9]|2[0-3]):[0-5][0-9]$": "09:30"}.get(schema["pattern"])
    return "text"[: schema.get("maxLength", 4)] if schema.get("minLength", 0) <= 4 else None


def full_document(layout, day=dt.date(2024, 3, 15)):
    """A filled-in document: every input field that applies gets a plausible value."""
    document = {}
    for spec in layout.fields:
        if not spec.read_only:
            value = _value(spec, day)
            if value is not None:
                document[spec.name] = value
    for name in hidden_fields(layout.form_def, document):
        document.pop(name, None)
    return document


def median_time(action, rounds):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--submissions", type=int, default=2000)
    args = parser.parse_args(argv)

    forms = reference_forms()
    fields = sum(len(f.fields) for f in forms)

    def compile_all():
        for form_def in forms:
            layout_for(form_def)

    def cold():
        build.clear_cache()
        compile_all()

    cold_s = median_time(cold, args.rounds)
    compile_all()
    cached_s = median_time(compile_all, args.rounds)
    print(f"compile {len(forms)} forms of {', '.join(REFERENCE)} ({fields} fields):")
    print(f"  cold   {cold_s * 1000:9.2f} ms  ({cold_s / len(forms) * 1000:.3f} ms per form)")
    print(f"  cached {cached_s * 1000:9.3f} ms  ({cached_s / len(forms) * 1e6:.2f} µs per form)")

    largest = max(forms, key=lambda f: len(canonical_json(thaw(f.schema))))
    layout = layout_for(largest)
    context = Context.for_zone("Europe/Copenhagen")
    document = full_document(layout)
    formdata = to_formdata(layout, document, {}, context)
    validator = validator_for(largest)

    def page_pipeline():
        form = layout.form_class(formdata)
        converted = to_document(layout, form, context, previous=document)
        prepared = prepare(largest, converted.document, False, missing=converted.missing,
                           stored=document, stored_missing={})
        return converted, prepared

    converted, prepared = page_pipeline()
    assert converted.errors == {} and prepared.errors == [], (converted.errors, prepared.errors)
    normalised = prepared.document  # the document stored: calculations included

    def bare():
        return list(validator.iter_errors(normalised))

    assert bare() == []
    # interleaved, so both see the same machine state
    ours, theirs = [], []
    for _ in range(args.submissions):
        start = time.perf_counter()
        page_pipeline()
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        bare()
        theirs.append(time.perf_counter() - start)
    ours_ms, theirs_ms = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
    size = len(canonical_json(thaw(largest.schema)))
    print(f"one submission of the largest form, {largest.id} ({len(largest.fields)} fields, {size} bytes of "
          f"schema; {len(document)} values typed, {len(normalised)} stored), median of {args.submissions}:")
    print(f"  parse + normalise + derive + validate  {ours_ms:8.3f} ms")
    print(f"  bare jsonschema validation (same doc)  {theirs_ms:8.3f} ms")
    print(f"  ratio                                  {ours_ms / theirs_ms:8.2f}x")


if __name__ == "__main__":
    main()
