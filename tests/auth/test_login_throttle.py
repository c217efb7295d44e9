"""Login throttling per client address: a spray of sign-ins over many usernames from one address is
refused with 429 and Retry-After before it can lock every account; the count lives in the database
(shared by app instances), a success does not clear it, and it ends with its window."""
import datetime as dt

import pytest
from sqlalchemy import func, select, update

from audit import RequestContext, audit_event
from ecrf import create_app
from ecrf.auth.login import LoginPolicy, authenticate
from ecrf.auth.throttle import AddressPolicy, Throttled
from ecrf.models import LoginThrottle, User

PASSWORD = "correct horse battery"
SPRAYER, ELSEWHERE = "203.0.113.7", "198.51.100.20"


def _app(connection, **extra):
    return create_app({"ECRF_ENV": "testing", "SECRET_KEY": "k", "DATABASE_BIND": connection,
                       "INSTANCE_PATH": "/nonexistent", "LOCKOUT_ATTEMPTS": 3,
                       "LOGIN_ADDRESS_ATTEMPTS": 6, "LOGIN_ADDRESS_MINUTES": 10, **extra})


@pytest.fixture
def users(demo, make_user):
    names = [f"user{i}" for i in range(8)]
    for name in names:
        make_user(name, "site_staff", "demo")
    return names


def _login(client, csrf_from, username, password, address=SPRAYER):
    token = csrf_from(client.get("/login", environ_base={"REMOTE_ADDR": address}))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


def _locked(db):
    db.expire_all()
    now = dt.datetime.now(dt.timezone.utc)
    return db.scalar(select(func.count()).select_from(User).where(User.locked_until > now))


def test_a_spray_from_one_address_is_refused_with_retry_after(connection, users, db, csrf_from):
    client = _app(connection).test_client()
    answers = [_login(client, csrf_from, name, "wrong guess 12345").status_code
               for name in users for _ in range(3)]
    assert answers[:6] == [401] * 6 and set(answers[6:]) == {429}
    refused = _login(client, csrf_from, "user7", "wrong guess 12345")
    retry = int(refused.headers["Retry-After"])
    assert refused.status_code == 429 and 0 < retry <= 600
    assert "Too many failed sign-ins" in refused.get_data(as_text=True)
    assert _locked(db) <= 2  # 6 failures at 3 per lockout, not all 8 accounts
    # The right password does not get through from that address, and unknown names read the same.
    assert _login(client, csrf_from, "user7", PASSWORD).status_code == 429
    assert _login(client, csrf_from, "nobody-at-all", "x" * 12).status_code == 429
    # Another address is not affected.
    assert _login(client, csrf_from, "user7", PASSWORD, address=ELSEWHERE).status_code == 302


def test_a_refused_attempt_checks_nothing_and_writes_no_event(connection, users, db, csrf_from):
    client = _app(connection, LOGIN_ADDRESS_ATTEMPTS=2).test_client()
    for name in users[:2]:
        assert _login(client, csrf_from, name, "wrong guess 12345").status_code == 401
    db.expire_all()
    events = db.scalar(select(func.count()).select_from(audit_event))
    assert _login(client, csrf_from, users[3], PASSWORD).status_code == 429
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(audit_event)) == events


def test_a_success_does_not_clear_the_failures_of_others(connection, users, db, csrf_from):
    client = _app(connection).test_client()
    for name in users[:5]:
        assert _login(client, csrf_from, name, "wrong guess 12345").status_code == 401
    assert _login(client, csrf_from, users[6], PASSWORD).status_code == 302
    fresh = _app(connection).test_client()
    assert _login(fresh, csrf_from, users[5], "wrong guess 12345").status_code == 401  # the sixth
    assert _login(fresh, csrf_from, users[6], PASSWORD).status_code == 429


def test_the_count_is_shared_by_app_instances_and_ends_with_its_window(connection, users, db, csrf_from):
    first, second = _app(connection).test_client(), _app(connection).test_client()
    for i, name in enumerate(users[:6]):
        assert _login(first if i % 2 else second, csrf_from, name, "wrong guess 12345").status_code == 401
    assert _login(first, csrf_from, users[7], PASSWORD).status_code == 429
    assert _login(second, csrf_from, users[7], PASSWORD).status_code == 429
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=11)
    db.execute(update(LoginThrottle).values(window_start=past, blocked_until=past + dt.timedelta(minutes=10)))
    db.flush()
    assert _login(second, csrf_from, users[7], PASSWORD).status_code == 302


def test_the_service_raises_throttled_and_can_be_turned_off(db, users):
    policy = LoginPolicy(attempts=3, address=AddressPolicy(attempts=2))
    where = RequestContext(channel="page", ip=SPRAYER)
    for name in users[:2]:
        assert authenticate(db, name, "wrong guess 12345", where, policy) is None
    with pytest.raises(Throttled) as refused:
        authenticate(db, users[2], PASSWORD, where, policy)
    assert 0 < refused.value.retry_after <= 15 * 60
    off = LoginPolicy(attempts=3, address=AddressPolicy(attempts=0))
    assert authenticate(db, users[2], PASSWORD, where, off) is not None
    assert authenticate(db, users[2], PASSWORD, RequestContext(channel="cli"), policy) is not None


def _spray_behind_proxy(client, csrf_from, users, forwarded_for):
    """Failed sign-ins arriving from the proxy's address, each claiming another client address."""
    answers = []
    for n, name in enumerate(users * 2):
        headers = {"X-Forwarded-For": forwarded_for(n)}
        token = csrf_from(client.get("/login", headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.2"}))
        answers.append(client.post("/login", data={"username": name, "password": "wrong guess 12345",
                                                   "csrf_token": token},
                                   headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.2"}).status_code)
    return answers


def test_behind_a_trusted_proxy_each_forwarded_client_is_counted_on_its_own(connection, users, db, csrf_from):
    client = _app(connection, TRUSTED_PROXIES=1, LOCKOUT_ATTEMPTS=100).test_client()
    answers = _spray_behind_proxy(client, csrf_from, users, lambda n: f"192.0.2.{n}")
    assert set(answers) == {401}  # sixteen clients, one failure each: none throttled
    assert db.scalar(select(func.count()).select_from(LoginThrottle)) == len(answers)


def test_without_trusted_proxies_a_forwarded_address_is_not_believed(connection, users, db, csrf_from):
    client = _app(connection, LOCKOUT_ATTEMPTS=100).test_client()
    answers = _spray_behind_proxy(client, csrf_from, users, lambda n: f"192.0.2.{n}")
    assert answers[:6] == [401] * 6 and set(answers[6:]) == {429}  # all counted as the connecting address
