"""/healthz: ok or not for anyone, the details for signed-in users, and one run of the checks however many ask."""

import json
import threading
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from revsearch_site import health


class Checks:
    """Stand-ins for the real checks that count their runs, and how many ran at the same moment."""

    def __init__(self, redis_ok: bool = True) -> None:
        self.redis_ok = redis_ok
        self.runs = self.running = self.most_at_once = 0
        self.lock = threading.Lock()

    def enter(self) -> None:
        with self.lock:
            self.runs += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)

    def leave(self) -> None:
        with self.lock:
            self.running -= 1

    def database(self) -> dict:
        self.enter()
        try:
            threading.Event().wait(0.01)  # a real check waits on the network; let the others pile up meanwhile
            return {"ok": True}
        finally:
            self.leave()

    def redis(self) -> dict:
        if not self.redis_ok:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6380. Connection refused.")
        return {"ok": True}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def checks(monkeypatch, settings):
    fake = Checks()
    settings.HEALTH_CACHE_SECONDS = 5
    monkeypatch.setattr(health, "CHECKS", {"database": fake.database, "redis": fake.redis})
    clock = Clock()
    monkeypatch.setattr(health, "clock", clock)
    health.forget_results()
    fake.clock = clock
    yield fake
    health.forget_results()


def ask(user=None):
    request = RequestFactory().get("/healthz")
    request.user = user or AnonymousUser()
    answer = health.healthz(request)
    answer.json = lambda: json.loads(answer.content)
    return answer


def concurrently(count: int, call) -> list:
    start = threading.Barrier(count)
    answers = [None] * count

    def one(index: int) -> None:
        start.wait()
        answers[index] = call()

    threads = [threading.Thread(target=one, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_anonymous_callers_learn_only_ok_or_not(checks):
    answer = ask()
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    checks.redis_ok = False
    health.forget_results()
    answer = ask()
    assert answer.status_code == 503 and answer.json() == {"status": "degraded"}


@pytest.mark.django_db
def test_signed_in_users_see_each_check_and_the_reason(checks, django_user_model):
    user = django_user_model.objects.create_user("viewer")
    checks.redis_ok = False
    answer = ask(user)
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "degraded",
        "reason": "redis: Error 111 connecting to 127.0.0.1:6380. Connection refused.",
        "database": {"ok": True},
        "redis": {"ok": False, "error": "Error 111 connecting to 127.0.0.1:6380. Connection refused."},
    }


def test_a_hundred_concurrent_calls_run_the_checks_once(checks):
    answers = concurrently(100, ask)
    assert [answer.status_code for answer in answers] == [200] * 100
    assert checks.runs == 1


def test_the_checks_never_run_twice_at_once_in_a_process(checks, settings):
    settings.HEALTH_CACHE_SECONDS = 0  # every result is stale at once: each call would run them
    answers = concurrently(30, ask)
    assert [answer.status_code for answer in answers] == [200] * 30
    assert checks.runs >= 1 and checks.most_at_once == 1


def test_while_the_checks_run_other_callers_get_the_last_result_at_once(checks, monkeypatch):
    ask()  # a first result
    checks.clock.now += 10
    entered, release = threading.Event(), threading.Event()

    def slow_redis() -> dict:
        entered.set()
        release.wait(30)
        return {"ok": False, "error": "went away"}

    monkeypatch.setitem(health.CHECKS, "redis", slow_redis)
    running = threading.Thread(target=ask)
    running.start()
    assert entered.wait(30)
    # The run under way holds the lock: this call does not wait for it, and answers from the last result.
    assert ask().status_code == 200
    release.set()
    running.join()
    assert ask().status_code == 503  # the new result, once the run is done


def test_a_result_is_reused_for_the_cache_seconds_only(checks):
    ask()
    checks.clock.now += 4.9
    ask()
    assert checks.runs == 1
    checks.clock.now += 0.1
    ask()
    assert checks.runs == 2


def test_a_check_added_to_the_dict_is_run_and_reported(checks, monkeypatch):
    monkeypatch.setitem(health.CHECKS, "processes", lambda: {"ok": False, "error": "watcher keeps dying"})
    health.forget_results()
    answer = ask(SimpleNamespace(is_authenticated=True))
    assert answer.status_code == 503
    assert answer.json()["reason"] == "processes: watcher keeps dying"
