"""Password hashing (argon2id, memory-hard) and the password policy."""
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
#: A short list of passwords every attacker tries first; longer lists belong to a deployment.
COMMON = frozenset("""
password password1 password123 passw0rd 123456 1234567 12345678 123456789 1234567890 qwerty
qwertyuiop abc123 letmein welcome welcome1 admin admin123 administrator iloveyou monkey dragon
football baseball sunshine princess trustno1 changeme secret master hello123 000000 111111
111111111 123123 654321 superman batman starwars whatever freedom
""".split())


class PasswordRejected(ValueError):
    """A password that breaks the policy; the message says why."""


def check_policy(password, username=None):
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise PasswordRejected(f"the password must have at least {MIN_LENGTH} characters")
    lowered = password.lower()
    if username and username.lower() in lowered:
        raise PasswordRejected("the password must not contain the username")
    if lowered in COMMON or lowered.rstrip("0123456789!") in COMMON:
        raise PasswordRejected("the password is too common")
    if len(set(password)) < 4:
        raise PasswordRejected("the password repeats too few different characters")


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
