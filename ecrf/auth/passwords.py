"""Password hashing (argon2id, memory-hard) and the password policy."""
import re
from pathlib import Path

import argon2

#: argon2id; by default the library's RFC 9106 low-memory profile (64 MiB, 3 passes), changed by
#: ECRF_ARGON2_TIME_COST / ECRF_ARGON2_MEMORY_KIB through ``configure``. A stored hash carries its
#: own parameters, so changing them never locks anyone out.
_HASHER = argon2.PasswordHasher()


def configure(time_cost=None, memory_kib=None):
    """Set the cost of new hashes (None keeps the library default)."""
    global _HASHER, DUMMY_HASH
    default = argon2.PasswordHasher()
    wanted = (time_cost or default.time_cost, memory_kib or default.memory_cost)
    if wanted == (_HASHER.time_cost, _HASHER.memory_cost):
        return
    _HASHER = argon2.PasswordHasher(time_cost=wanted[0], memory_cost=wanted[1],
                                    parallelism=default.parallelism)
    DUMMY_HASH = _HASHER.hash("ecrf: no such user")

MIN_LENGTH = 10
#: The 10,000 most common passwords (from zxcvbn's list; the file's header says where it came from).
COMMON = frozenset(line.strip() for line in (Path(__file__).with_name("common_passwords.txt"))
                   .read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#"))
#: Sequences a run is typed along: keyboard rows (QWERTY, QWERTZ and AZERTY), keyboard columns, the
#: alphabet and the digits; a run is 3 or more neighbours, forwards or backwards.
SEQUENCES = ("`1234567890-=", "qwertyuiop[]", "asdfghjkl;'", "zxcvbnm,./", "qwertzuiop", "yxcvbnm",
             "azertyuiop", "qsdfghjklm", "wxcvbn", "1qaz", "2wsx", "3edc", "4rfv", "5tgb", "6yhn", "7ujm",
             "8ik,", "9ol.", "0p;/", "abcdefghijklmnopqrstuvwxyz", "01234567890")
#: What a password must keep, once keyboard runs are taken out, to count as more than a run.
MIN_BEYOND_RUNS = 4
#: The demo's documented password (``ecrf.demo``): refused for every account but the demo's own.
DEMO_PASSWORD = "ecrf-demo-2026"


class PasswordRejected(ValueError):
    """A password that breaks the policy; the message says why."""


def check_policy(password, username=None, *, demo_account=False):
    """Raise PasswordRejected, saying why, for a password that is short, contains the username, is
    among the most common passwords, is mostly keyboard runs (qwerty, asdfgh, 123456), repeats one
    short block (abcabcabc), or is the demo password (allowed only for the demo's own accounts,
    ``demo_account``)."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise PasswordRejected(f"the password must have at least {MIN_LENGTH} characters")
    lowered = password.lower()
    if username and username.lower() in lowered:
        raise PasswordRejected("the password must not contain the username")
    if not demo_account and "ecrfdemo" in re.sub(r"[^a-z0-9]", "", lowered):
        raise PasswordRejected("the password is the published demo password")
    core = lowered.strip("0123456789!@#$%^&*?.,;:-_+=~ ")
    if lowered in COMMON or core in COMMON or lowered.rstrip("0123456789!") in COMMON:
        raise PasswordRejected("the password is one of the 10,000 most common passwords")
    if len(set(password)) < 4:
        raise PasswordRejected("the password repeats too few different characters")
    if re.fullmatch(r"(.+?)\1+", lowered) or (len(core) >= 4 and re.fullmatch(r"(.+?)\1+", core)):
        raise PasswordRejected("the password repeats one short block (like abcabcabc)")
    if len(_without_runs(lowered)) < MIN_BEYOND_RUNS:
        raise PasswordRejected("the password is a keyboard or counting run (like qwerty, asdfgh or 123456)")


def _without_runs(text):
    """``text`` with every run of 3 or more neighbours along a SEQUENCE (either way) taken out, and
    the separators people put between runs."""
    keep = [True] * len(text)
    for sequence in SEQUENCES:
        for seq in (sequence, sequence[::-1]):
            i = 0
            while i < len(text) - 2:
                j = i
                while j + 1 < len(text) and text[j] in seq and text[j + 1] in seq \
                        and seq.index(text[j + 1]) == seq.index(text[j]) + 1:
                    j += 1
                if j - i >= 2:
                    keep[i:j + 1] = [False] * (j - i + 1)
                    i = j + 1
                else:
                    i += 1
    return "".join(c for c, k in zip(text, keep) if k and c not in " -_.")


def hash_password(password):
    return _HASHER.hash(password)


def verify_password(password_hash, password):
    """True when ``password`` matches; never raises for a wrong password or a malformed hash."""
    try:
        return _HASHER.verify(password_hash, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


#: A valid hash of nothing anyone knows: verified against when the username does not exist, so
#: a wrong username costs the same time as a wrong password.
DUMMY_HASH = _HASHER.hash("ecrf: no such user")
