"""ecrf configuration: every setting comes from an ``ECRF_*`` environment variable, with safe defaults.

This file is read by path (``ecrf.settings.load``), never imported as a top-level module, so an
installed ecrf cannot clash with another project's ``config``. It has no side effects: it only turns an
environment mapping into a settings dictionary.

=============================  ================================================================
variable                       meaning (default)
=============================  ================================================================
ECRF_ENV                       ``production`` | ``development`` | ``testing`` (production)
ECRF_INSTANCE_PATH             folder for the SQLite file and the demo's secret key (./instance)
ECRF_DATABASE_URL              SQLAlchemy URL (sqlite:///<instance>/ecrf.sqlite3); PostgreSQL
                               as postgresql+psycopg://user@host/db
ECRF_DB_LOCK_TIMEOUT_SECONDS   how long a statement waits for a database lock before the request
                               answers 503 "try again" (SQLite busy_timeout, PostgreSQL lock_timeout)
                               (30)
ECRF_DB_CONNECT_TIMEOUT_SECONDS  how long to wait for PostgreSQL to accept a connection (10)
ECRF_SECRET_KEY                session and CSRF signing key; required in production
ECRF_FORMS_PATH                folder of study folders loaded by ``ecrf demo`` (the bundled forms/)
ECRF_MAX_DEFINITION_BYTES      largest study or form file accepted (1048576)
ECRF_SESSION_IDLE_MINUTES      idle session timeout (30)
ECRF_LOCKOUT_ATTEMPTS          failed logins before a lockout (5)
ECRF_LOCKOUT_MINUTES           length of a lockout (15)
ECRF_LOGIN_ADDRESS_ATTEMPTS    failed logins from one client address, over any usernames, before
                               that address gets 429 until its window ends; 0 turns it off (30)
ECRF_LOGIN_ADDRESS_MINUTES     that window, minutes (15)
ECRF_TRUSTED_PROXIES           reverse proxies in front of ecrf whose X-Forwarded-For/-Proto ecrf
                               believes: the client address (throttling, the audit log) is the one
                               the nearest N proxies report; 0 ignores those headers, which anyone
                               can send (0)
ECRF_SECURE_COOKIES            send cookies over HTTPS only (on in production, off otherwise)
ECRF_ARGON2_TIME_COST          argon2id passes for new password hashes (3)
ECRF_ARGON2_MEMORY_KIB         argon2id memory for new password hashes, KiB (65536)
ECRF_MAX_REQUEST_BYTES         largest request body accepted, JSON or form post (1048576)
ECRF_SMTP_HOST                 mail server for sending SAE reports; unset: reports are not e-mailed
ECRF_SMTP_PORT                 its port (587 with starttls, 465 with ssl, 25 otherwise)
ECRF_SMTP_SECURITY             ``starttls`` | ``ssl`` | ``none`` (starttls)
ECRF_SMTP_USER                 login name, if the server needs one (none)
ECRF_SMTP_PASSWORD             its password (none)
ECRF_SMTP_FROM                 sender address of SAE report e-mails (ecrf@localhost)
ECRF_SMTP_TIMEOUT              seconds to wait for the mail server (30)
ECRF_SAE_EMAIL_TO              comma-separated recipients of every issued SAE report (none)
=============================  ================================================================
"""
import os
from pathlib import Path


def _flag(value, default):
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def from_environ(environ=None):
    """Return the settings for ``environ`` (``os.environ`` when omitted)."""
    env = os.environ if environ is None else environ
    mode = env.get("ECRF_ENV", "production").strip().lower() or "production"
    instance = Path(env.get("ECRF_INSTANCE_PATH") or Path.cwd() / "instance").resolve()
    return {
        "ECRF_ENV": mode,
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": env.get("ECRF_DATABASE_URL") or f"sqlite:///{instance / 'ecrf.sqlite3'}",
        "DB_LOCK_TIMEOUT_SECONDS": float(env.get("ECRF_DB_LOCK_TIMEOUT_SECONDS") or 30),
        "DB_CONNECT_TIMEOUT_SECONDS": float(env.get("ECRF_DB_CONNECT_TIMEOUT_SECONDS") or 10),
        "SECRET_KEY": env.get("ECRF_SECRET_KEY") or None,
        "FORMS_PATH": env.get("ECRF_FORMS_PATH") or None,
        "MAX_DEFINITION_BYTES": int(env.get("ECRF_MAX_DEFINITION_BYTES") or 1024 * 1024),
        "SESSION_IDLE_MINUTES": int(env.get("ECRF_SESSION_IDLE_MINUTES") or 30),
        "LOCKOUT_ATTEMPTS": int(env.get("ECRF_LOCKOUT_ATTEMPTS") or 5),
        "LOCKOUT_MINUTES": int(env.get("ECRF_LOCKOUT_MINUTES") or 15),
        "LOGIN_ADDRESS_ATTEMPTS": int(env.get("ECRF_LOGIN_ADDRESS_ATTEMPTS") or 30),
        "LOGIN_ADDRESS_MINUTES": int(env.get("ECRF_LOGIN_ADDRESS_MINUTES") or 15),
        "TRUSTED_PROXIES": int(env.get("ECRF_TRUSTED_PROXIES") or 0),
        "SECURE_COOKIES": _flag(env.get("ECRF_SECURE_COOKIES"), mode == "production"),
        "ARGON2_TIME_COST": int(env.get("ECRF_ARGON2_TIME_COST") or 3),
        "ARGON2_MEMORY_KIB": int(env.get("ECRF_ARGON2_MEMORY_KIB") or 65536),
        "MAX_REQUEST_BYTES": int(env.get("ECRF_MAX_REQUEST_BYTES") or 1024 * 1024),
        "SMTP_HOST": env.get("ECRF_SMTP_HOST") or None,
        "SMTP_SECURITY": (env.get("ECRF_SMTP_SECURITY") or "starttls").strip().lower(),
        "SMTP_PORT": int(env.get("ECRF_SMTP_PORT") or {"starttls": 587, "ssl": 465}.get(
            (env.get("ECRF_SMTP_SECURITY") or "starttls").strip().lower(), 25)),
        "SMTP_USER": env.get("ECRF_SMTP_USER") or None,
        "SMTP_PASSWORD": env.get("ECRF_SMTP_PASSWORD") or None,
        "SMTP_FROM": env.get("ECRF_SMTP_FROM") or "ecrf@localhost",
        "SMTP_TIMEOUT": float(env.get("ECRF_SMTP_TIMEOUT") or 30),
        "SAE_EMAIL_TO": [address.strip() for address in (env.get("ECRF_SAE_EMAIL_TO") or "").split(",")
                         if address.strip()],
    }
