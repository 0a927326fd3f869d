"""Log records as single lines, tracebacks included, so every event is one line for grep and log collectors."""

import logging


class OneLineFormatter(logging.Formatter):
    """A formatter whose multi-line parts (tracebacks, messages with newlines) are joined with " | "."""

    def format(self, record: logging.LogRecord) -> str:
        return " | ".join(line for line in super().format(record).splitlines() if line.strip())
