"""Sign-in throttling (django-axes): real posts of the admin's login form, as a browser sends them."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone

from tests.conftest import BASE_DIR

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
PASSWORD = "a-long-enough-password-7"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("keeper", password=PASSWORD, is_staff=True, is_superuser=True)


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # dozens of sign-ins, quickly


def sign_in(client: Client, password: str, username: str = "keeper", **headers):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/"}, **headers)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def fail(client: Client, times: int, **headers) -> list[int]:
    return [sign_in(client, f"wrong-{attempt}", **headers).status_code for attempt in range(times)]


@pytest.mark.processes
def test_the_limits_come_from_the_environment():
    code = "from revsearch_site.settings import *; print(AXES_FAILURE_LIMIT, AXES_COOLOFF_TIME, AXES_COOLOFF_MESSAGE)"
    environment = os.environ | {"REVSEARCH_LOGIN_FAILURE_LIMIT": "3", "REVSEARCH_LOGIN_LOCKOUT_MINUTES": "2"}
    done = subprocess.run([sys.executable, "-c", code], env=environment, cwd=BASE_DIR, capture_output=True, text=True)
    assert done.stdout.startswith("3 0:02:00 ") and "try again in 2 minutes" in done.stdout, done.stderr


def test_five_failures_lock_the_username_out_from_that_address(staff, settings):
    client = Client(REMOTE_ADDR="198.51.100.7")
    codes = fail(client, 5)
    assert codes[:4] == [200] * 4  # the form again, with its error
    assert codes[4] == 429
    answer = sign_in(client, PASSWORD)
    assert answer.status_code == 429
    assert answer.content.decode() == (
        "Too many failed sign-ins for this username from your address: try again in 15 minutes."
    )
    assert not signed_in(client)


def test_a_success_before_the_limit_clears_the_count(staff):
    client = Client(REMOTE_ADDR="198.51.100.7")
    fail(client, 4)
    assert sign_in(client, PASSWORD).status_code == 302 and signed_in(client)
    client.logout()
    assert fail(client, 4) == [200] * 4  # counted from zero again
    assert sign_in(client, PASSWORD).status_code == 302


def test_the_lockout_is_per_username_and_address(staff, django_user_model):
    django_user_model.objects.create_user("other", password=PASSWORD, is_staff=True)
    attacker = Client(REMOTE_ADDR="198.51.100.7")
    fail(attacker, 5)
    # The same account from another address, and another account from the same address, still sign in.
    elsewhere = Client(REMOTE_ADDR="203.0.113.9")
    assert sign_in(elsewhere, PASSWORD).status_code == 302 and signed_in(elsewhere)
    assert sign_in(attacker, PASSWORD, username="other").status_code == 302 and signed_in(attacker)


def test_the_lockout_ends_after_the_cool_off(staff):
    client = Client(REMOTE_ADDR="198.51.100.7")
    fail(client, 5)
    assert sign_in(client, PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert sign_in(client, PASSWORD).status_code == 302 and signed_in(client)


def test_behind_the_proxy_the_address_is_the_one_the_proxy_appended(staff, settings):
    settings.HTTPS = True
    client = Client(REMOTE_ADDR="10.0.0.2")  # the proxy
    # The client sends an X-Forwarded-For of its own; the proxy appends the address it saw.
    for forged in ("1.1.1.1", "2.2.2.2, 3.3.3.3", "not an address", "4.4.4.4"):
        sign_in(client, "wrong", HTTP_X_FORWARDED_FOR=f"{forged}, 198.51.100.7")
    assert fail(client, 1, HTTP_X_FORWARDED_FOR="198.51.100.7") == [429]
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.7"}
    # Another client behind the same proxy is not locked out.
    assert sign_in(client, PASSWORD, HTTP_X_FORWARDED_FOR="5.5.5.5, 203.0.113.9").status_code == 302


def test_without_the_proxy_x_forwarded_for_is_ignored(staff, settings):
    settings.HTTPS = False
    client = Client(REMOTE_ADDR="198.51.100.7")
    for attempt in range(5):
        sign_in(client, "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{attempt}")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.7"}
    assert sign_in(client, PASSWORD).status_code == 429


def test_a_proxy_header_that_is_not_an_address_falls_back_to_the_connection(staff, settings):
    settings.HTTPS = True
    client = Client(REMOTE_ADDR="10.0.0.2")
    fail(client, 2, HTTP_X_FORWARDED_FOR="198.51.100.7, <script>")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"10.0.0.2"}


def test_tests_and_tools_that_force_a_login_still_get_in(admin_client):
    assert admin_client.get("/").status_code == 200
