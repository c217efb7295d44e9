"""E-mail delivery of issued SAE reports (optional: only when ECRF_SMTP_HOST and ECRF_SAE_EMAIL_TO
are set). The PDF is attached as issued, with its sha256 in the message; each attempt, sent or
failed, is written to the audit log. Mail goes out only after the report's transaction committed,
so no one is ever sent a report that was not stored."""
import dataclasses
import email.message
import email.utils
import smtplib
import ssl

from audit import Action, append
from ecrf.db import write_transaction
from ecrf.reports.issued import report_field
from ecrf.reports.service import report_pdf


@dataclasses.dataclass(frozen=True)
class Delivery:
    """The outcome of one delivery attempt: ``status`` is "sent" or "failed: <reason>"."""

    recipients: tuple
    status: str

    @property
    def sent(self):
        return self.status == "sent"


def mail_configured(settings):
    return bool(settings.get("SMTP_HOST") and settings.get("SAE_EMAIL_TO"))


def build_message(settings, report, pdf):
    """The e-mail for ``report``: subject and body name the case, never more patient data than the
    subject id; the PDF is attached."""
    message = email.message.EmailMessage()
    label = "Initial" if report.version == 1 else f"Follow-up {report.version - 1}"
    study = report.content["study"]["key"]
    message["Subject"] = f"SAE report {report.number} {label} (study {study}, site {report.site.key})"
    message["From"] = settings.get("SMTP_FROM") or "ecrf@localhost"
    message["To"] = ", ".join(settings["SAE_EMAIL_TO"])
    message["Date"] = email.utils.formatdate(localtime=False)
    message["Message-ID"] = email.utils.make_msgid(domain="ecrf")
    message.set_content(
        f"SAE report {report.number}, {label.lower()} report (version {report.version}).\n"
        f"Study {study}, site {report.site.key}, subject {report.subject.key}.\n"
        f"Issued {report.issued_at:%Y-%m-%d %H:%M} UTC by {report.issued_by}.\n\n"
        f"SHA-256 of the attached PDF: {report.sha256}\n"
        "Please mark the report received in ecrf's SAE inbox.\n")
    message.add_attachment(pdf, maintype="application", subtype="pdf",
                           filename=f"{report.number}-v{report.version}.pdf")
    return message


def send_message(settings, message):
    """Send through the configured server (STARTTLS, SSL or plain, with login when configured)."""
    host, port = settings["SMTP_HOST"], int(settings.get("SMTP_PORT") or 25)
    security = (settings.get("SMTP_SECURITY") or "starttls").lower()
    timeout = float(settings.get("SMTP_TIMEOUT") or 30)
    if security == "ssl":
        client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    with client:
        if security == "starttls":
            client.starttls(context=ssl.create_default_context())
        if settings.get("SMTP_USER"):
            client.login(settings["SMTP_USER"], settings.get("SMTP_PASSWORD") or "")
        client.send_message(message)


def deliver_sae_report(session, actor, report, settings):
    """E-mail ``report`` to ECRF_SAE_EMAIL_TO; return the Delivery, or None when mail is off."""
    if not mail_configured(settings):
        return None
    recipients = tuple(settings["SAE_EMAIL_TO"])
    try:
        send_message(settings, build_message(settings, report, report_pdf(session, report)))
        status = "sent"
    except (OSError, smtplib.SMTPException) as exc:
        status = f"failed: {type(exc).__name__}: {exc}"[:500]
    with write_transaction(session):
        append(session.connection(), actor.event(
            Action.REPORT, study=report.content["study"]["key"], site=report.site.key,
            subject=report.subject.key, form=report.record.form_key, record=report.record_id,
            field=f"{report_field(report.number, report.version)}/email",
            new={"to": list(recipients), "status": status, "sha256": report.sha256}))
    return Delivery(recipients, status)


def issue_and_deliver(session, actor, settings, study_key, subject_key, form_key, seq, now=None):
    """Issue a report and, once it is stored, e-mail it when mail is configured."""
    from ecrf.reports.service import issue_sae_report

    report = issue_sae_report(session, actor, study_key, subject_key, form_key, seq, now=now)
    return report, deliver_sae_report(session, actor, report, settings)
