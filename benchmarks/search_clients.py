"""Signed-in clients that search by photo, one upload after another, and the latencies they saw."""

import contextlib
import logging
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks.instance import Instance, InstanceError

logger = logging.getLogger(__name__)

# Searches each client makes before the drop, so the web workers have loaded their models; not counted.
WARM_SEARCHES = 2


@dataclass(frozen=True)
class Search:
    """One search: started is perf_counter seconds; seconds runs from sending the photo to the result page's last
    byte (the redirect included); error is empty when the result page came back."""

    started: float
    seconds: float
    error: str


class Client(threading.Thread):
    """One signed-in user who uploads query photos one after another until told to stop."""

    def __init__(self, instance: Instance, photos: list[Path], stopping: threading.Event) -> None:
        super().__init__(daemon=True)
        self.instance, self.stopping = instance, stopping
        # Read beforehand, so no file reading is timed.
        self.photos = [(photo.name, photo.read_bytes()) for photo in photos]
        self.searches: list[Search] = []
        self.warm = threading.Event()

    def run(self) -> None:
        try:
            session = self.instance.signed_in()
            session.get(f"{self.instance.url}/", timeout=30)
        except (InstanceError, requests.RequestException) as error:
            self.searches.append(Search(time.perf_counter(), 0.0, f"could not sign in: {error}"))
            self.warm.set()
            return
        number = 0
        while not self.stopping.is_set():
            name, photo = self.photos[number % len(self.photos)]
            self.searches.append(self.search(session, name, photo))
            number += 1
            if number >= WARM_SEARCHES:
                self.warm.set()

    def search(self, session: requests.Session, name: str, photo: bytes) -> Search:
        return upload_search(session, self.instance.url, name, photo)


def upload_search(session: requests.Session, site: str, name: str, photo: bytes) -> Search:
    """Upload one query photo to the search form as a signed-in user, timed until the result page is read."""
    url = f"{site}/"
    started = time.perf_counter()
    try:
        # Without stream=True, requests returns only once the whole result page has been read.
        answer = session.post(
            url,
            data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
            files={"photo": (name, photo, "image/jpeg")},
            headers={"Referer": url},
            timeout=120,
        )
    except Exception as error:  # whatever went wrong, it is a failed search to count, not a dead client
        return Search(started, time.perf_counter() - started, f"{type(error).__name__}: {error}")
    seconds = time.perf_counter() - started
    if answer.status_code != 200 or "/search/" not in answer.url:
        return Search(started, seconds, f"HTTP {answer.status_code} at {answer.url} for {name}")
    return Search(started, seconds, "")


@contextlib.contextmanager
def searching(instance: Instance, queries: list[Path], count: int) -> Iterator[list[Client]]:
    """Clients searching with different photos (client i takes every count-th query photo) until the block ends."""
    stopping = threading.Event()
    clients = [Client(instance, queries[i::count] or queries, stopping) for i in range(count)]
    for client in clients:
        client.start()
    try:
        yield clients
    finally:
        stopping.set()
        for client in clients:
            client.join(timeout=150)


def latency_summary(seconds: list[float]) -> dict[str, float]:
    """p50, p95 (nearest rank) and max, in milliseconds."""
    if not seconds:
        return {}
    ordered = sorted(seconds)

    def rank(share: float) -> float:
        return round(1000 * ordered[max(0, math.ceil(share * len(ordered)) - 1)], 1)

    return {"p50": rank(0.50), "p95": rank(0.95), "max": rank(1.0)}
