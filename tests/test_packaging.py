"""A wheel installed outside the checkout works: forms/, schemas/, templates/, static files and the
migrations ship with it; and ``ecrf demo`` serves the demo on 127.0.0.1."""
import os
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """ecrf installed from a freshly built wheel into a new venv (dependencies borrowed from ours)."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp / "dist"), str(ROOT)], check=True, cwd=tmp)
    wheel = next((tmp / "dist").glob("ecrf-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True)
    python = tmp / "venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    env = dict(os.environ, PYTHONPATH=sysconfig.get_paths()["purelib"], ECRF_INSTANCE_PATH=str(tmp / "instance"))
    env.pop("ECRF_DATABASE_URL", None)
    run_dir = tmp / "elsewhere"
    run_dir.mkdir()
    return python, env, run_dir


def _ecrf(installed, *args):
    python, env, run_dir = installed
    return subprocess.run([str(python), "-m", "ecrf", *args], cwd=run_dir, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_wheel_runs_from_its_own_files(installed):
    python, env, run_dir = installed
    where = subprocess.run([str(python), "-c", "import ecrf, ecrf.paths as p; print(ecrf.__file__); "
                            "print(p.resource('forms')); print(p.resource('templates'))"],
                           cwd=run_dir, env=env, capture_output=True, text=True, check=True).stdout
    assert str(ROOT) not in where, where
    assert "_bundled/forms" in where and "_bundled/templates" in where
    forms = where.splitlines()[1]
    result = _ecrf(installed, "study", "validate", *(str(p) for p in sorted(Path(forms).iterdir())))
    assert result.returncode == 0, result.stdout + result.stderr
    init = _ecrf(installed, "init-db")
    assert init.returncode == 0 and "database at revision" in init.stdout, init.stderr


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_serves_the_login_page_with_demo_users(installed):
    python, env, run_dir = installed
    port = _free_port()
    proc = subprocess.Popen([str(python), "-m", "ecrf", "demo", "--port", str(port)], cwd=run_dir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        page = None
        while time.monotonic() < deadline and page is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
                    page = response.read().decode()
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.5)
        assert page is not None, "the demo did not serve /login"
        assert 'name="username"' in page and 'name="csrf_token"' in page
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{port}/login" in output
    for username in ("admin", "investigator", "staff", "monitor", "datamanager", "sponsor", "pharmacist"):
        assert username in output
    verify = _ecrf(installed, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
