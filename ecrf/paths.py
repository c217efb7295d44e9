"""Where ecrf finds its top-level folders: the checkout it runs from, or the copies inside the wheel."""
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT = PACKAGE_DIR.parent
_BUNDLED = PACKAGE_DIR / "_bundled"


def resource(name):
    """Path of a top-level resource (``forms``, ``schemas``, ``templates`` or ``config.py``).

    A source checkout (an editable install or tests) uses the files at the top of the repository, so
    edits show at once; an installed wheel uses the copies setup.py put in ``ecrf/_bundled``.
    """
    in_checkout = _CHECKOUT / name
    if (_CHECKOUT / "pyproject.toml").is_file() and in_checkout.exists():
        return in_checkout
    return _BUNDLED / name


MIGRATIONS_DIR = PACKAGE_DIR / "migrations"
