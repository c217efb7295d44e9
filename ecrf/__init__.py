"""ecrf: electronic case report forms for clinical trials.

``create_app(config=None)`` builds the Flask application: settings from config.py (read by path)
overridden by ``config``, the database, login and CSRF, then the web blueprints. Nothing queries the
database at start-up.
"""
import datetime as dt
import secrets
from pathlib import Path

from flask import Flask

from ecrf import settings as settings_module
from ecrf.paths import PACKAGE_DIR, resource

__all__ = ["create_app"]


def _secret_key(settings):
    if settings_module.require_secret_key(settings):
        return settings["SECRET_KEY"]
    # Development and tests: a throwaway key, or the demo's key kept under instance/.
    key_file = settings.get("SECRET_KEY_FILE")
    if key_file:
        path = Path(key_file)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32), encoding="utf-8")
            path.chmod(0o600)
        return path.read_text(encoding="utf-8").strip()
    return secrets.token_hex(32)


def database_options(settings):
    """The engine options the settings give (lock and connect timeouts)."""
    return {"lock_timeout": settings["DB_LOCK_TIMEOUT_SECONDS"],
            "connect_timeout": settings["DB_CONNECT_TIMEOUT_SECONDS"]}


def create_app(config=None):
    """The application; ``config`` overrides settings (tests pass DATABASE_URL or DATABASE_BIND)."""
    from ecrf import web
    from ecrf.db import Database

    settings = settings_module.load(overrides=config)
    app = Flask("ecrf", template_folder=str(resource("templates")),
                static_folder=str(PACKAGE_DIR / "static"), instance_path=settings["INSTANCE_PATH"])
    app.config.update(settings)
    app.config.update(
        SECRET_KEY=_secret_key(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings["SECURE_COOKIES"],
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=settings["SECURE_COOKIES"],
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=settings["SESSION_IDLE_MINUTES"]),
        MAX_CONTENT_LENGTH=settings["MAX_REQUEST_BYTES"],
        WTF_CSRF_TIME_LIMIT=None,
        TESTING=settings["ECRF_ENV"] == "testing",
    )
    Database(settings.get("DATABASE_BIND") or settings["DATABASE_URL"], **database_options(settings)).init_app(app)
    web.init_app(app)
    if settings["TRUSTED_PROXIES"] > 0:
        # Behind N reverse proxies the client is the address they forwarded; headers from anyone
        # else are not believed (without this setting, X-Forwarded-* are ignored altogether).
        from werkzeug.middleware.proxy_fix import ProxyFix

        proxies = settings["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    return app
