"""The ``ecrf`` command: set-up, study definitions, sites, users, roles, tokens, audit and serving.

Every command exits 0 on success and 1 with a one-line message on a user error, never a traceback.
Commands call the same services as the web pages, so the CLI changes nothing the log does not see.
"""
import contextlib
import sys
from pathlib import Path

import click

from ecrf import settings as settings_module


class Context:
    """Settings and, on first use, the database of one command run."""

    def __init__(self):
        self._db = None
        self._settings = None

    @property
    def settings(self):
        if self._settings is None:
            self._settings = settings_module.load()
        return self._settings

    @property
    def db(self):
        if self._db is None:
            from ecrf import database_options
            from ecrf.db import Database

            url = self.settings["DATABASE_URL"]
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self._db = Database(url, **database_options(self.settings))
        return self._db

    @contextlib.contextmanager
    def session(self):
        session = self.db.sessions()
        try:
            yield session
        finally:
            session.close()


pass_ctx = click.make_pass_decorator(Context, ensure=True)


@contextlib.contextmanager
def user_errors():
    """Turn the errors a user can cause into a one-line message and exit code 1."""
    from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from ecrf.db import database_unavailable, error_summary
    from ecrf.errors import EcrfError
    from ecrf.settings import ConfigurationError

    try:
        yield
    except EcrfError as exc:
        raise click.ClickException(str(exc)) from None
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    except (DBAPIError, PoolTimeout) as exc:
        if database_unavailable(exc):
            raise click.ClickException(
                f"the database is not available ({error_summary(exc)}); nothing was saved, try again") from None
        if not isinstance(exc, (OperationalError, ProgrammingError)):
            raise
        raise click.ClickException(
            f"database error: {error_summary(exc)} (is the database reachable and initialised? run ecrf init-db)") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ecrf")
def main():
    """ecrf: electronic case report forms for clinical trials."""


# --- set-up -------------------------------------------------------------------------------------

@main.command("init-db")
@pass_ctx
def init_db(ctx):
    """Create the database schema, or upgrade it to the current version."""
    from ecrf import migrate

    with user_errors():
        migrate.upgrade(ctx.db.engine)
        click.echo(f"database at revision {migrate.current_revision(ctx.db.engine)}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
def serve(host, port, workers):
    """Serve the application under gunicorn (ECRF_SECRET_KEY required in production)."""
    from ecrf import create_app
    from ecrf.serve import run

    with user_errors():
        run(create_app(), host, port, workers)


@main.command()
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-serve", is_flag=True, help="Set everything up, print the logins, and exit.")
@click.option("--allow-demo-accounts", is_flag=True,
              help="Create the demo accounts even in a production configuration or beside real users.")
def demo(port, no_serve, allow_demo_accounts):
    """Set up the demo (database, every study under forms/, users, sample data) and serve it on
    127.0.0.1. Runs as development unless ECRF_ENV or ECRF_SECRET_KEY is set; refuses to create its
    accounts in production or on a database with real users unless --allow-demo-accounts."""
    from ecrf.demo import prepare_demo

    with user_errors():
        app, logins = prepare_demo(allow_demo_accounts=allow_demo_accounts)
        url = f"http://127.0.0.1:{port}/login"
        click.echo(f"ecrf demo ready: {url}")
        click.echo("Sign in as any of these (password for all: " + logins.password + "):")
        for username, role in logins.users:
            click.echo(f"  {username:<14} {role}")
        if no_serve:
            app.extensions["ecrf_db"].engine.dispose()
            return
        from ecrf.serve import run

        run(app, "127.0.0.1", port, 2)


# --- studies ------------------------------------------------------------------------------------

@main.group()
def study():
    """Validate, load, list and compare study definitions."""


def _load_or_report(path, max_bytes):
    from ecrf.definitions import StudyInvalid, load_study

    try:
        return load_study(path, max_bytes=max_bytes), []
    except StudyInvalid as exc:
        return None, exc.errors


def _load_or_fail(path, max_bytes, refusal):
    """The loaded study, or every problem on stderr and exit 1 with ``refusal``."""
    loaded, errors = _load_or_report(path, max_bytes)
    if loaded is None:
        for error in errors:
            click.echo(str(error), err=True)
        raise click.ClickException(f"{path}: {refusal.format(n=len(errors))}")
    return loaded


@study.command("validate")
@click.argument("paths", nargs=-1, required=True)
@pass_ctx
def study_validate(ctx, paths):
    """Check study folders; print one line per problem (file: pointer: message)."""
    bad = 0
    for path in paths:
        loaded, errors = _load_or_report(path, ctx.settings["MAX_DEFINITION_BYTES"])
        for error in errors:
            click.echo(str(error))
        if loaded is None:
            bad += 1
        else:
            click.echo(f"{path}: valid ({len(loaded.forms)} forms, {len(loaded.visits)} visits, "
                       f"content {loaded.hash[:12]})", err=True)
    sys.exit(1 if bad else 0)


@study.command("load")
@click.argument("path")
@pass_ctx
def study_load(ctx, path):
    """Store a study folder as a new version (a no-op when nothing changed)."""
    from ecrf.actor import Actor
    from ecrf.definitions.publish import publish_study

    loaded = _load_or_fail(path, ctx.settings["MAX_DEFINITION_BYTES"],
                           "not loaded, {n} problem(s); nothing was stored")
    with user_errors(), ctx.session() as session:
        result = publish_study(session, Actor.cli(), loaded)
    word = "loaded as version" if result.created else "unchanged, still version"
    click.echo(f"{result.study_key}: {word} {result.version} ({result.content_hash[:12]})")


@study.command("list")
@pass_ctx
def study_list(ctx):
    """List the loaded studies and their versions."""
    from sqlalchemy import select

    from ecrf.models import Study

    with user_errors(), ctx.session() as session:
        studies = session.scalars(select(Study).order_by(Study.key)).all()
        if not studies:
            click.echo("no studies loaded")
        for row in studies:
            click.echo(f"{row.key}  {row.title}")
            for version in row.versions:
                click.echo(f"  version {version.number}  {version.content_hash[:12]}  "
                           f"{version.loaded_at:%Y-%m-%dT%H:%M:%SZ}  by {version.loaded_by}")


@study.command("diff")
@click.argument("path")
@pass_ctx
def study_diff(ctx, path):
    """Describe what loading PATH would change against the stored current version."""
    from sqlalchemy import select

    from ecrf.definitions.diff import describe_changes
    from ecrf.models import Study

    loaded = _load_or_fail(path, ctx.settings["MAX_DEFINITION_BYTES"], "invalid, {n} problem(s)")
    with user_errors(), ctx.session() as session:
        row = session.scalar(select(Study).where(Study.key == loaded.id))
        current = row.current if row else None
        if current is not None and current.content_hash == loaded.hash:
            click.echo(f"{loaded.id}: no changes against version {current.number}")
            return
        for line in describe_changes(current.definition if current else None, loaded):
            click.echo(line)


# --- sites, users, roles, tokens ------------------------------------------------------------------

@main.group()
def site():
    """Manage the sites of a study."""


@site.command("add")
@click.argument("study_key", metavar="STUDY")
@click.argument("site_id")
@click.option("--name", required=True, help="The site's name.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA zone for showing times.")
@pass_ctx
def site_add(ctx, study_key, site_id, name, timezone):
    """Add SITE_ID to STUDY."""
    from ecrf.actor import Actor
    from ecrf.studies import add_site

    with user_errors(), ctx.session() as session:
        add_site(session, Actor.cli(), study_key, site_id, name, timezone)
    click.echo(f"site {site_id} added to {study_key}")


@main.group()
def user():
    """Create, change, deactivate and list users (never deleted)."""


def _read_password(password_stdin, confirm=True):
    if password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise click.ClickException("no password on standard input")
        return line.rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)


@user.command("create")
@click.argument("username")
@click.option("--name", help="Full name, as shown on signatures.")
@click.option("--password-stdin", is_flag=True, help="Read the password from one line of stdin; "
              "the user need not change it at first sign-in.")
@pass_ctx
def user_create(ctx, username, name, password_stdin):
    """Create USERNAME (prompts for a password unless --password-stdin)."""
    from ecrf.actor import Actor
    from ecrf.auth.accounts import create_user

    password = _read_password(password_stdin)
    with user_errors(), ctx.session() as session:
        create_user(session, Actor.cli(), username, password, name=name,
                    must_change_password=not password_stdin)
    click.echo(f"user {username} created")


@user.command("update")
@click.argument("username")
@click.option("--name", help="New full name.")
@click.option("--password", "set_password", is_flag=True, help="Set a new password (prompted).")
@click.option("--password-stdin", is_flag=True, help="Set a new password read from stdin.")
@pass_ctx
def user_update(ctx, username, name, set_password, password_stdin):
    """Change a user's name or password."""
    from ecrf.actor import Actor
    from ecrf.auth.accounts import update_user

    password = _read_password(password_stdin) if (set_password or password_stdin) else None
    with user_errors(), ctx.session() as session:
        update_user(session, Actor.cli(), username, name=name, password=password)
    click.echo(f"user {username} updated")


@user.command("deactivate")
@click.argument("username")
@click.option("--reason", help="Why (kept in the audit log).")
@pass_ctx
def user_deactivate(ctx, username, reason):
    """Deactivate USERNAME: sessions end and API tokens stop working at once."""
    from ecrf.actor import Actor
    from ecrf.auth.accounts import deactivate_user

    with user_errors(), ctx.session() as session:
        deactivate_user(session, Actor.cli(), username, reason)
    click.echo(f"user {username} deactivated")


@user.command("list")
@pass_ctx
def user_list(ctx):
    """List users with their state and roles."""
    from ecrf.auth.accounts import list_users, user_grants

    with user_errors(), ctx.session() as session:
        for row in list_users(session):
            grants = ", ".join(f"{s}:{r}@{site or '*'}" for s, r, site in user_grants(session, row))
            state = "active" if row.active else "inactive"
            click.echo(f"{row.username:<20} {state:<8} {row.name}  {grants}")


@main.group()
def role():
    """Grant and revoke roles in a study."""


def _role_options(command):
    for decorator in reversed([
        click.argument("username"),
        click.option("--study", "study_key", required=True, help="Study id."),
        click.option("--role", "role_name", required=True, help="admin, investigator, site_staff, "
                     "monitor, data_manager, sponsor or pharmacist."),
        click.option("--site", "sites", multiple=True, help="Limit to this site (repeatable); "
                     "none: all sites."),
        pass_ctx,
    ]):
        command = decorator(command)
    return command


@role.command("grant")
@_role_options
def role_grant(ctx, username, study_key, role_name, sites):
    """Grant ROLE in STUDY to USERNAME."""
    from ecrf.actor import Actor
    from ecrf.auth.accounts import grant_role

    with user_errors(), ctx.session() as session:
        grant_role(session, Actor.cli(), username, study_key, role_name, sites)
    click.echo(f"{username}: {role_name} in {study_key} at {', '.join(sites) or 'all sites'}")


@role.command("revoke")
@_role_options
def role_revoke(ctx, username, study_key, role_name, sites):
    """Revoke ROLE in STUDY from USERNAME."""
    from ecrf.actor import Actor
    from ecrf.auth.accounts import revoke_role

    with user_errors(), ctx.session() as session:
        revoke_role(session, Actor.cli(), username, study_key, role_name, sites)
    click.echo(f"{username}: {role_name} revoked in {study_key}")


@main.group()
def token():
    """Create and revoke API tokens."""


@token.command("create")
@click.argument("username")
@pass_ctx
def token_create(ctx, username):
    """Create an API token for USERNAME; the token is the last line printed (shown once)."""
    from ecrf.actor import Actor
    from ecrf.auth.accounts import create_token

    with user_errors(), ctx.session() as session:
        value = create_token(session, Actor.cli(), username)
    click.echo(f"API token for {username} (shown once; it acts with the user's roles):")
    click.echo(value)


@token.command("revoke")
@click.argument("username")
@click.option("--prefix", help="Revoke only the token starting with this (default: all).")
@pass_ctx
def token_revoke(ctx, username, prefix):
    """Revoke USERNAME's API tokens."""
    from ecrf.actor import Actor
    from ecrf.auth.accounts import revoke_token

    with user_errors(), ctx.session() as session:
        count = revoke_token(session, Actor.cli(), username, prefix)
    click.echo(f"{count} token(s) of {username} revoked")


# --- audit ----------------------------------------------------------------------------------------

@main.group("audit")
def audit_group():
    """Verify, checkpoint and export the audit log."""


@audit_group.command("verify")
@click.option("--against", help="A checkpoint SEQ:HASH the log must still contain.")
@click.option("--jobs", type=click.IntRange(min=1),
              help="Processes to use: beyond one, workers check ranges of the chain on their own "
                   "connections while this one replays [default: 2, or 1 on a single CPU; an in-memory "
                   "database is always verified in one].")
@pass_ctx
def audit_verify(ctx, against, jobs):
    """Prove the chain intact, that replaying it reproduces the stored data, that every issued SAE
    report and receipt is as issued, and that the append-only triggers are in place."""
    import os

    from audit import parse_checkpoint
    from ecrf.audit_check import verify_database

    checkpoint = None
    if against:
        try:
            checkpoint = parse_checkpoint(against)
        except ValueError:
            raise click.ClickException("--against takes SEQ:HASH as printed by ecrf audit checkpoint") from None
    jobs = jobs or min(2, os.cpu_count() or 1)
    with user_errors(), ctx.session() as session:
        try:
            report = verify_database(session, checkpoint, jobs=jobs)
        except RuntimeError as exc:  # a worker process failed: no verdict either way
            if jobs == 1:
                raise
            raise click.ClickException(f"audit verify could not finish ({exc}); "
                                       "--jobs 1 verifies in this process alone") from None
    if report.ok:
        click.echo(f"audit log intact: {report.events} events, head {report.head_seq}:{report.head_hash}; "
                   f"replay reproduces {report.records} form records, {report.subjects} subjects and "
                   f"{report.signatures} signatures; {report.reports} SAE reports and {report.receipts} "
                   f"receipts are as issued; {report.triggers} append-only triggers in place")
        return
    for problem in report.problems:
        click.echo(f"audit verify FAILED: {problem}", err=True)
    sys.exit(1)


@audit_group.command("checkpoint")
@pass_ctx
def audit_checkpoint(ctx):
    """Print the current head (SEQ:HASH) to keep outside the system."""
    import audit

    with user_errors(), ctx.session() as session:
        seq, digest = audit.head(session.connection())
    click.echo(f"{seq}:{digest}")


@audit_group.command("export")
@click.option("--study", "study_key", help="Study id.")
@click.option("--accounts", is_flag=True, help="Instead of a study: the events that belong to no "
              "study (sign-ins, failed sign-ins, lockouts, account and token changes).")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True,
              help="csv for spreadsheets, jsonl with every column as stored.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="File to write.")
@click.option("--unblinded", is_flag=True, help="Show allocation values (randomization, unblinding); "
              "recorded in the audit log.")
@pass_ctx
def audit_export(ctx, study_key, accounts, fmt, output, unblinded):
    """Export a study's audit trail, or the account events, to a file (the export itself is an
    audited action)."""
    import os

    from ecrf.actor import Actor
    from ecrf.audit_view import export_events, operator_account_scope, operator_scope
    from ecrf.studies import get_study

    if bool(study_key) == accounts:
        raise click.ClickException("give either --study STUDY or --accounts")
    partial = Path(f"{output}.partial")
    try:
        with user_errors(), ctx.session() as session:
            scope = (operator_account_scope() if accounts
                     else operator_scope(get_study(session, study_key), unblinded))
            with partial.open("wb") as out:
                result = export_events(session, Actor.cli(), scope, fmt, out)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    click.echo(f"{result.events} events of {study_key or 'no study (accounts)'} "
               f"(through event {result.through_seq}) written to {output}")


import ecrf.exchange.export_commands  # noqa: E402,F401  (registers `ecrf export`)


# --- every command asks the permission table --------------------------------------------------------

def _ask_the_permission_table(group, prefix=""):
    """Wrap each command of ``group`` (and of its subgroups) so that it asks
    ``permissions.require_operator`` before it runs; a refusal is audited and exits with code 1.
    Commands that act as a named user (``permissions.ACTS_AS_USER``) ask for themselves."""
    import functools

    from ecrf.auth.permissions import ACTS_AS_USER

    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            _ask_the_permission_table(command, f"{path} ")
        elif command.callback is not None and path not in ACTS_AS_USER \
                and not getattr(command.callback, "asks_permission", False):
            def checked(*args, _path=path, _run=command.callback, **kwargs):
                _require_operator(_path)
                return _run(*args, **kwargs)

            command.callback = functools.update_wrapper(checked, command.callback)
            command.callback.asks_permission = True


def _require_operator(path):
    from ecrf.auth.permissions import require_operator
    from ecrf.errors import PermissionDenied

    try:
        require_operator(path)
    except PermissionDenied as exc:
        _audit_refusal(exc, path)
        raise click.ClickException(str(exc)) from None


def _audit_refusal(exc, path):
    """A permission_denied event for a refused command, when there is a database to write it to."""
    from sqlalchemy.exc import SQLAlchemyError

    from ecrf.actor import Actor
    from ecrf.auth.denials import record_denial

    ctx = click.get_current_context().find_object(Context)
    try:
        with ctx.session() as session:
            record_denial(session, Actor.cli(), exc.action, detail=f"ecrf {path}")
    except (SQLAlchemyError, OSError, settings_module.ConfigurationError):
        pass  # no usable database: the refusal still stands


def _invoke_checked(ctx, _invoke=main.invoke):
    # Wrapped at the first run rather than at import, so that commands defined anywhere below
    # (or added by other modules) are covered too.
    _ask_the_permission_table(main)
    return _invoke(ctx)


main.invoke = _invoke_checked


# --- SAE reports and casebooks ----------------------------------------------------------------------
# With --as, a named user acts: they enter their password (as for an e-signature) and the permission
# table is asked for them (ecrf.reports.commands). Without it the operator acts, which the operator
# table (permissions.CLI_COMMANDS) must allow. Either way the command asks before it runs.

def _acting_user(ctx, session, username, password_stdin):
    from ecrf.reports import commands

    if not username:
        return None
    password = _read_password(password_stdin, confirm=False)
    return commands.authenticate(session, ctx.settings, username, password)


@main.group()
def sae():
    """Issue SAE reports."""


@sae.command("report")
@click.option("--study", "study_key", required=True, help="Study id.")
@click.option("--subject", "subject_key", required=True, help="Subject id.")
@click.option("--record", "seq", required=True, type=click.IntRange(1), help="AE log entry number.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Write the issued PDF here.")
@click.option("--as", "username", help="Issue as this user (sae.issue at the subject's site), "
              "who confirms with their password.")
@click.option("--password-stdin", is_flag=True, help="Read that password from one line of stdin.")
@pass_ctx
def sae_report(ctx, study_key, subject_key, seq, output, username, password_stdin):
    """Issue the next SAE report (initial or follow-up) on an AE and write its PDF."""
    from ecrf.reports import commands

    if not username:
        _require_operator("sae report")
    with user_errors(), ctx.session() as session:
        user = _acting_user(ctx, session, username, password_stdin)
        report, delivery = commands.issue(session, ctx.settings, study_key, subject_key, seq, user)
        Path(output).write_bytes(commands.pdf_bytes(session, report))
    click.echo(f"{report.number} version {report.version} ({report.report_type}), {report.pages} "
               f"page(s), sha256 {report.sha256} -> {output}")
    if delivery is not None:
        click.echo(f"e-mail to {', '.join(delivery.recipients)}: {delivery.status}")


@main.command()
@click.option("--study", "study_key", required=True, help="Study id.")
@click.option("--site", "site_key", required=True, help="Site id: one casebook per subject of it.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder for the PDFs (created if missing).")
@click.option("--as", "username", help="Export as this user (form.view and audit.view at the site), "
              "who confirms with their password.")
@click.option("--password-stdin", is_flag=True, help="Read that password from one line of stdin.")
@pass_ctx
def casebook(ctx, study_key, site_key, output, username, password_stdin):
    """Write a casebook PDF (forms, values, missing-data flags, signatures, audit trail) for every
    subject of a site."""
    from ecrf.reports import commands

    if not username:
        _require_operator("casebook")
    folder = Path(output)
    with user_errors(), ctx.session() as session:
        user = _acting_user(ctx, session, username, password_stdin)
        actor, reader = commands.casebook_reader(session, study_key, site_key, user)
        keys = commands.site_subjects(session, study_key, site_key)
        folder.mkdir(parents=True, exist_ok=True)
        pages = 0
        with click.progressbar(keys, label=f"casebooks of {study_key} site {site_key}",
                               item_show_func=lambda key: key, file=sys.stderr) as bar:
            for key in bar:
                pages += commands.write_casebook(session, actor, reader, study_key, key, folder)
    click.echo(f"{len(keys)} casebook(s), {pages} page(s) in {folder}")


# Both commands ask the permission table themselves (above), for the user or for the operator.
sae_report.callback.asks_permission = True
casebook.callback.asks_permission = True


# --- coding (CTCAE v5.0, shipped; MedDRA, imported from a site's licensed release) -------------------

@main.group()
def coding():
    """Search the coding dictionaries; import a licensed MedDRA release."""


@coding.command("search")
@click.argument("text")
@click.option("--dictionary", type=click.Choice(["ctcae", "meddra"]), default="ctcae", show_default=True)
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@pass_ctx
def coding_search(ctx, text, dictionary, limit):
    """Terms matching TEXT (words of the term, a code or the SOC), best first."""
    from ecrf.coding import ctcae, meddra

    with user_errors():
        if dictionary == "ctcae":
            for t in ctcae.search(text, limit):
                click.echo(f"{t.llt_code}\t{t.term}\t{t.soc}\tgrades {','.join(str(g) for g, _ in t.grades)}")
            return
        found = meddra.search(ctx.settings["INSTANCE_PATH"], text, limit)
        for t in found:
            click.echo(f"{t.llt_code}\t{t.llt_name}\tPT {t.pt_code} {t.pt_name}\t{t.soc_name}")


@coding.command("import-meddra")
@click.argument("folder", type=click.Path(file_okay=False))
@pass_ctx
def coding_import_meddra(ctx, folder):
    """Import a licensed MedDRA ASCII release (the folder holding llt.asc, mdhier.asc, ...)."""
    from ecrf.coding import meddra

    with user_errors():
        dictionary = meddra.import_release(ctx.settings["INSTANCE_PATH"], folder)
    click.echo(f"MedDRA {dictionary.version} ({dictionary.language}): {len(dictionary.terms)} LLTs imported")


# --- imports: study definitions from REDCap and ODM, form data in bulk (ecrf.exchange) --------------
from ecrf.exchange.import_commands import import_group  # noqa: E402  (needs the helpers above)

main.add_command(import_group)

# --- randomization (ecrf/randomization/commands.py) --------------------------------------------------
from ecrf.randomization.commands import randomization as _randomization  # noqa: E402

main.add_command(_randomization)
