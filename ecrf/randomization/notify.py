"""E-mail to the study's unblinding contacts (``blinding.unblinding_contacts``) after an emergency
unblinding, through the SMTP settings of ``ecrf.reports.mail``. Sent only after the unblinding
committed; each attempt is audited. The message names who, when and why, never the arm."""
import email.message
import email.utils
import smtplib

from audit import Action, append
from ecrf.db import write_transaction
from ecrf.reports.mail import Delivery, send_message


def build_message(settings, study_key, subject, user, unblinding, recipients):
    message = email.message.EmailMessage()
    message["Subject"] = f"Emergency unblinding: study {study_key}, subject {subject.key}"
    message["From"] = settings.get("SMTP_FROM") or "ecrf@localhost"
    message["To"] = ", ".join(recipients)
    message["Date"] = email.utils.formatdate(localtime=False)
    message["Message-ID"] = email.utils.make_msgid(domain="ecrf")
    message.set_content(
        f"{user.username} unblinded subject {subject.key} (study {study_key}, site {subject.site.key}) "
        f"on {unblinding.unblinded_at:%Y-%m-%d %H:%M} UTC.\n\nReason given:\n{unblinding.reason}\n\n"
        "The arm is shown in ecrf to that user only; it is not part of this message.\n")
    return message


def notify_unblinding(session, actor, spec, subject, user, unblinding, settings):
    """Tell the contacts; return the Delivery, or None when no server or no contact is configured."""
    recipients = tuple((spec.document.get("blinding") or {}).get("unblinding_contacts", ()))
    if not recipients or not settings.get("SMTP_HOST"):
        return None
    try:
        send_message(settings, build_message(settings, spec.id, subject, user, unblinding, recipients))
        status = "sent"
    except (OSError, smtplib.SMTPException) as exc:
        status = f"failed: {type(exc).__name__}: {exc}"[:500]
    with write_transaction(session):
        append(session.connection(), actor.event(
            Action.UNBLIND, study=spec.id, site=subject.site.key, subject=subject.key,
            field=f"/unblinding/{unblinding.id}/email", new={"to": list(recipients), "status": status}))
    return Delivery(recipients, status)
