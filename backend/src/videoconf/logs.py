"""One logger set-up: one JSON line per record on stdout, quiet in production."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Final

import orjson

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged too.
_STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
# Never log these, whatever a caller passes.
_SECRET_KEYS: Final = frozenset({"token", "jwt_secret", "authorization", "password", "secret"})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = "[redacted]" if key.lower() in _SECRET_KEYS else value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log is one line per request: useful when debugging, noise otherwise.
    logging.getLogger("aiohttp.access").setLevel(
        logging.INFO if level == "DEBUG" else logging.WARNING
    )
