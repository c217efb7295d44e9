"""Ship the top-level forms/, schemas/, templates/ and config.py inside the wheel.

They stay at the top of the repository (where study teams review them); an installed ecrf reads them
from ecrf/_bundled/, which ecrf.paths chooses when no checkout is around it.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent
BUNDLED = ("forms", "schemas", "templates", "config.py")


class BuildWithBundledFiles(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "ecrf" / "_bundled"
        for name in BUNDLED:
            source = HERE / name
            if source.is_dir():
                shutil.copytree(source, target / name, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif source.is_file():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithBundledFiles})
