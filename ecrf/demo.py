"""``ecrf demo``: a ready-to-try EDC on this machine.

Creates (or upgrades) the database under instance/, loads every study under forms/, makes sure each
has a site, creates one demo user per role with roles in every study, and enrols a few subjects with
some data, all through the same services the pages use (so the demo's audit log verifies). Running it
again reuses what is there.
"""
import dataclasses
import datetime as dt
import json
import os
from pathlib import Path

from sqlalchemy import func, inspect, select

from ecrf import create_app, migrate
from ecrf.actor import Actor
from ecrf.auth import accounts
from ecrf.auth.passwords import DEMO_PASSWORD
from ecrf.capture.service import enrol_subject, save_form
from ecrf.capture.visits import set_visit_date
from ecrf.db import get_session
from ecrf.definitions import StudyInvalid, load_study
from ecrf.definitions.publish import publish_study
from ecrf.errors import EcrfError, Invalid
from ecrf.models import Subject, User
from ecrf.paths import resource
from ecrf.settings import load as load_settings
from ecrf.studies import add_site, definition, get_study, list_sites

#: Demo username -> role, one per role.
DEMO_USERS = (
    ("admin", "admin", "Ada Admin"),
    ("investigator", "investigator", "Ingrid Investigator"),
    ("staff", "site_staff", "Sam Site-Staff"),
    ("monitor", "monitor", "Mona Monitor"),
    ("datamanager", "data_manager", "Dan Data-Manager"),
    ("sponsor", "sponsor", "Sol Sponsor"),
    ("pharmacist", "pharmacist", "Pia Pharmacist"),
)
SUBJECTS_PER_STUDY = 3
#: Plausible values the generic sample cannot guess (screening labs inside the inclusion limits).
DEMO_VALUES = json.loads((Path(__file__).with_name("demo_values.json")).read_text(encoding="utf-8"))


@dataclasses.dataclass(frozen=True)
class DemoLogins:
    password: str
    users: tuple  # (username, role)


class DemoRefused(EcrfError):
    """The demo's accounts, with their published password, would go where they must not."""


def demo_config(environ=None):
    """The demo's settings: a development configuration it sets itself when the environment names
    no mode and no secret key (a fresh machine), else what the environment says."""
    settings = load_settings(environ)
    instance = Path(settings["INSTANCE_PATH"])
    instance.mkdir(parents=True, exist_ok=True)
    config = {"SECRET_KEY_FILE": str(instance / "secret_key")}
    explicit = (os.environ if environ is None else environ).get("ECRF_ENV")
    if not explicit and not settings.get("SECRET_KEY"):
        config["ECRF_ENV"] = "development"
    return config


def refuse_demo_accounts(app, allow=False):
    """Raise DemoRefused, unless ``allow``, when the demo's accounts (one per role, all with the
    published password) would be created in a production configuration or beside real accounts."""
    if allow:
        return
    if app.config["ECRF_ENV"] == "production":
        raise DemoRefused("ecrf demo refuses to create its accounts (published password) in a production "
                          "configuration (ECRF_ENV=production, or a secret key and no ECRF_ENV); "
                          "use --allow-demo-accounts to do it anyway")
    engine = app.extensions["ecrf_db"].engine
    if not inspect(engine).has_table(User.__tablename__):
        return
    demo_names = [username for username, _, _ in DEMO_USERS]
    with engine.connect() as connection:
        real = connection.scalar(select(func.count()).select_from(User).where(User.username.not_in(demo_names)))
    if real:
        raise DemoRefused(f"ecrf demo refuses to create its accounts (published password) in a database "
                          f"that holds {real} other user(s); use --allow-demo-accounts to do it anyway")


def prepare_demo(forms_path=None, allow_demo_accounts=False):
    """Set the demo up; return the app and the demo logins. Refuses (DemoRefused) in a production
    configuration or on a database with real users, unless ``allow_demo_accounts``."""
    app = create_app(demo_config())
    with app.app_context():
        try:
            refuse_demo_accounts(app, allow_demo_accounts)
        except DemoRefused:
            app.extensions["ecrf_db"].engine.dispose()
            raise
        migrate.upgrade(app.extensions["ecrf_db"].engine)
        session = get_session()
        cli = Actor.cli()
        folder = Path(forms_path or app.config.get("FORMS_PATH") or resource("forms"))
        study_keys = []
        for path in sorted(p for p in folder.iterdir() if (p / "study.json").is_file()):
            try:
                study = load_study(path, max_bytes=app.config["MAX_DEFINITION_BYTES"])
            except StudyInvalid as exc:
                raise EcrfError(f"{path} is invalid: {exc.errors[0]}") from None
            publish_study(session, cli, study)
            if not list_sites(session, get_study(session, study.id)):
                add_site(session, cli, study.id, "01", "Demo site")
            study_keys.append(study.id)
        users = _demo_users(session, cli, study_keys)
        for key in study_keys:
            _allocation_list(session, cli, key)
            _sample_subjects(session, users["staff"], key)
    return app, DemoLogins(DEMO_PASSWORD, tuple((u, r) for u, r, _ in DEMO_USERS))


def _demo_users(session, actor, study_keys):
    made = {}
    for username, role, name in DEMO_USERS:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user = accounts.create_user(session, actor, username, DEMO_PASSWORD, name=name,
                                        must_change_password=False, demo_account=True)
        for key in study_keys:
            accounts.grant_role(session, actor, username, key, role)
        made[username] = Actor(user.id, user.username, role, actor.context)
    return made


def _sample_subjects(session, actor, study_key):
    """A few subjects with some data: eligible ones enrolled, visit dates from five weeks ago so the
    schedule shows done, due and overdue visits."""
    study = get_study(session, study_key)
    if session.scalar(select(func.count()).select_from(Subject).where(Subject.study_id == study.id)):
        return
    spec = definition(study)
    site = list_sites(session, study)[0]
    start = dt.date.today() - dt.timedelta(days=35)
    anchor = next((v for v in spec.visits if v.day == 0), spec.visits[0])
    for n in range(SUBJECTS_PER_STUDY):
        subject = enrol_subject(session, actor, study_key, site.key)
        if spec.eligibility:
            _screen(session, actor, spec, study_key, subject.key, eligible=n < SUBJECTS_PER_STUDY - 1)
        _randomize(session, actor, spec, study_key, subject.key)
        for visit in spec.visits[: spec.visits.index(anchor) + (2 if n == 0 else 1)]:
            day = start + dt.timedelta(days=visit.day - anchor.day + 7 * n)
            if day > dt.date.today():
                break
            set_visit_date(session, actor, study_key, subject.key, visit.id, day)
            for form_id in visit.forms:
                if spec.eligibility and form_id == spec.eligibility["form"]:
                    continue
                try:
                    save_form(session, actor, study_key, subject.key, visit.id, form_id,
                              sample_document(spec.forms[form_id], day))
                except Invalid:
                    continue  # a form whose rules the generic sample cannot satisfy stays empty


def _allocation_list(session, actor, study_key):
    """The concealed allocation list (or, for minimization, its seed) of a randomized study, once."""
    from ecrf.randomization import service as randomization

    study = get_study(session, study_key)
    method = (definition(study).document.get("randomization") or {}).get("method")
    if method is None or randomization.allocation_list(session, study) is not None:
        return
    randomization.generate_list(session, actor, study_key)


def _randomize(session, actor, spec, study_key, subject_key):
    """Randomize a sample subject as the protocol does; one the service refuses (not enrolled, a
    stratification value the generic sample data left out) stays unrandomized, as it would at a site."""
    from ecrf.randomization import service as randomization

    if not spec.document.get("randomization"):
        return
    try:
        randomization.randomize(session, actor, study_key, subject_key)
    except EcrfError:
        pass


def _screen(session, actor, spec, study_key, subject_key, eligible):
    """Complete the eligibility form: every criterion met, or (not eligible) the first exclusion."""
    rules = spec.eligibility
    form = spec.forms[rules["form"]]
    visit = next(v for v in spec.visits if form.id in v.forms)
    data = sample_document(form, dt.date.today())
    data.update(DEMO_VALUES.get(study_key, {}).get(form.id, {}))
    data.update({name: True for name in rules.get("inclusion", ())})
    data.update({name: False for name in rules.get("exclusion", ())})
    if not eligible and rules.get("exclusion"):
        data[rules["exclusion"][0]] = True
    for complete in (True, False):
        try:
            save_form(session, actor, study_key, subject_key, visit.id, form.id, data, complete=complete)
            return
        except Invalid:
            continue


def sample_document(form_def, day):
    """Plausible values for a form's simple fields: the first code, the visit date, and for numbers
    a value inside the range that the field's soft checks accept where one of a few candidates does."""
    from ecrf.rules.derive import applies

    data = {}
    for field in form_def.fields:
        schema, x = field.schema, field.ecrf
        if "calculate" in x or schema.get("readOnly") or not applies(field, data):
            continue
        best, fewest = None, None
        for value in _sample_values(schema, day):
            if value is None:
                continue
            failing = _failing_checks(form_def, dict(data, **{field.name: value}))
            if fewest is None or failing < fewest:
                best, fewest = value, failing
            if failing == 0:
                break
        if best is not None:
            data[field.name] = best
    return data


def _failing_checks(form_def, data):
    """How many soft checks (including those of calculated fields) the document fails."""
    from ecrf.rules.derive import derive, soft_checks

    return len(soft_checks(form_def, derive(form_def, data)))


def _sample_values(schema, day):
    kind = schema.get("type")
    if kind in ("integer", "number") and "enum" not in schema:
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", low + 10))
        for share in (0.5, 0.25, 0.1, 0.05, 0.75, 0.4, 0.6):
            value = low + (high - low) * share
            yield int(value) if kind == "integer" else round(value, 1)
        return
    if kind == "string" and schema.get("format") == "date":
        yield day.isoformat()
        yield day.replace(year=day.year - 58, day=min(day.day, 28)).isoformat()  # a birth date
        return
    yield _sample_value(schema, day)


def _sample_value(schema, day):
    if "enum" in schema:
        return schema["enum"][0]
    if "oneOf" in schema and all("const" in o for o in schema["oneOf"]):
        return schema["oneOf"][0]["const"]
    kind = schema.get("type")
    fmt = schema.get("format")
    if kind == "string" and fmt == "date":
        return day.isoformat()
    if kind == "string" and fmt == "date-time":
        return f"{day.isoformat()}T09:00:00Z"
    if kind == "string" and fmt == "time":
        return "09:00:00"
    if kind == "integer" or kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", low + 10))
        middle = (low + high) / 2
        return int(middle) if kind == "integer" else round(middle, 1)
    if kind == "boolean":
        return False
    return None
