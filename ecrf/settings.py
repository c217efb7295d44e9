"""Read the top-level config.py by path and turn it into settings (see config.py for the variables)."""
import os
import runpy

from ecrf.paths import resource


class ConfigurationError(Exception):
    """The settings are unusable (for example production without a secret key)."""


def load(environ=None, overrides=None):
    """Return the settings dictionary: config.py applied to ``environ``, then ``overrides``."""
    module = runpy.run_path(str(resource("config.py")))
    settings = module["from_environ"](environ)
    overrides = dict(overrides or {})
    if "ECRF_ENV" in overrides and "SECURE_COOKIES" not in overrides:
        # The Secure default follows the mode; an explicit ECRF_SECURE_COOKIES still wins.
        explicit = (os.environ if environ is None else environ).get("ECRF_SECURE_COOKIES")
        if not explicit:
            overrides["SECURE_COOKIES"] = overrides["ECRF_ENV"] == "production"
    settings.update(overrides)
    from ecrf.auth import passwords

    passwords.configure(settings["ARGON2_TIME_COST"], settings["ARGON2_MEMORY_KIB"])
    return settings


def require_secret_key(settings):
    """Refuse to run in production without an explicit secret key."""
    if not settings.get("SECRET_KEY"):
        if settings["ECRF_ENV"] == "production":
            raise ConfigurationError(
                "ECRF_SECRET_KEY is not set: production refuses to start without a secret key "
                "(set ECRF_SECRET_KEY, or ECRF_ENV=development for a throwaway key)")
        return False
    return True
