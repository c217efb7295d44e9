"""The app factory, configuration and the demo's set-up."""
import pytest

from ecrf import create_app
from ecrf.settings import ConfigurationError, load


def test_production_refuses_to_start_without_a_secret_key():
    with pytest.raises(ConfigurationError, match="ECRF_SECRET_KEY"):
        create_app({"ECRF_ENV": "production", "SECRET_KEY": None, "DATABASE_URL": "sqlite://"})


def test_settings_come_from_the_environment_with_safe_defaults(tmp_path):
    settings = load({"ECRF_INSTANCE_PATH": str(tmp_path)})
    assert settings["ECRF_ENV"] == "production"
    assert settings["DATABASE_URL"] == f"sqlite:///{tmp_path / 'ecrf.sqlite3'}"
    assert settings["SECURE_COOKIES"] is True
    assert settings["SESSION_IDLE_MINUTES"] == 30
    dev = load({"ECRF_ENV": "development", "ECRF_DATABASE_URL": "postgresql+psycopg://x@h/db"})
    assert dev["SECURE_COOKIES"] is False and dev["DATABASE_URL"].startswith("postgresql")


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    from ecrf.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_pages_send_security_headers(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
