"""The data import page: a data manager uploads a CSV file, sees the dry run's differences, and
confirms. The page calls the same import as ``ecrf import data`` (ecrf.exchange.import_data)."""
import base64
import binascii
import hashlib

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import FileField, HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from ecrf.auth import permissions
from ecrf.db import get_session
from ecrf.errors import Invalid
from ecrf.exchange.import_data import ImportRefused, import_csv_text
from ecrf.studies import definition, get_study
from ecrf.web.auth import request_context

bp = Blueprint("imports", __name__)


class ImportForm(FlaskForm):
    form = SelectField("Form", validators=[DataRequired()])
    file = FileField("CSV file (UTF-8, the columns of the CSV export)")
    reason = StringField("Reason for change (for rows that change saved data)",
                         validators=[Optional(), Length(max=2000)])
    #: The previewed file (base64, so that browsers keep its line breaks as they were), sent back
    #: with the confirmation, and its digest.
    text = HiddenField()
    digest = HiddenField()


def _digest(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _uploaded_text(form):
    """The CSV text: the uploaded file, or on confirmation the previewed one (unchanged)."""
    upload = request.files.get(form.file.name)
    if upload is not None and upload.filename:
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise Invalid("the file is not UTF-8: save it as UTF-8 (CSV UTF-8) and upload it again") from None
    if form.text.data and form.digest.data == _digest(form.text.data):
        try:
            return base64.b64decode(form.text.data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            pass
    raise Invalid("choose a CSV file to import")


@bp.route("/studies/<study_key>/import", methods=["GET", "POST"])
@login_required
def data(study_key):
    session = get_session()
    study = get_study(session, study_key)
    permissions.require(session, current_user.user, "data.import", study)
    spec = definition(study)
    form = ImportForm()
    form.form.choices = [(f, spec.forms[f].title) for f in spec.forms]
    report = problems = None
    status = 200
    if form.validate_on_submit():
        confirm = "confirm" in request.form
        try:
            text = _uploaded_text(form)
            report = import_csv_text(session, current_user.user, study.key, form.form.data, text,
                                     reason=form.reason.data or None, dry_run=not confirm,
                                     context=request_context("import"))
        except ImportRefused as exc:
            problems, status = exc.lines(), 422
        except Invalid as exc:
            problems, status = [str(exc)], 422
        else:
            if confirm:
                flash(f"{len(report.rows)} row(s) imported into {spec.forms[report.form].title}: "
                      f"{report.count('created')} created, {report.count('changed')} changed, "
                      f"{report.count('unchanged')} unchanged.")
                return redirect(url_for("studies.home", study_key=study.key))
            form.text.data = base64.b64encode(text.encode("utf-8")).decode("ascii")
            form.digest.data = _digest(form.text.data)
    elif request.method == "POST":
        status = 422
    return render_template("imports/data.html", study=study, form=form, report=report,
                           problems=problems), status
