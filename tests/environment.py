"""Loaded with `-p` before Django reads its settings: the test run gets a home of its own.

DATABASE_URL is kept, so the suite can run against PostgreSQL (pytest-django makes its own test database)."""

import os
import tempfile

os.environ["REVSEARCH_HOME"] = tempfile.mkdtemp(prefix="revsearch-test-")
for name in ("REVSEARCH_INBOX", "REDIS_URL", "MILVUS_URI"):
    os.environ.pop(name, None)
