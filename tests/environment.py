"""Loaded with `-p` before Django reads its settings: the test run gets a home of its own."""

import os
import tempfile

os.environ["REVSEARCH_HOME"] = tempfile.mkdtemp(prefix="revsearch-test-")
for name in ("REVSEARCH_INBOX", "DATABASE_URL", "REDIS_URL", "MILVUS_URI"):
    os.environ.pop(name, None)
