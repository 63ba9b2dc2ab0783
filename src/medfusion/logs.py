"""Logging without PII. Log lines name routes by template (``/api/patients/{patient_id}``), never query
strings or bodies; a last-line-of-defence filter masks anything shaped like a 身份证号 or a phone number
that a library might still print."""

from __future__ import annotations

import logging
import re
from typing import Any

_ID_NUMBER = re.compile(r"(?<![0-9])\d{17}[0-9Xx](?![0-9])")
_MOBILE = re.compile(r"(?<![0-9])1[3-9]\d{9}(?![0-9])")


def redact(text: str) -> str:
    return _MOBILE.sub("[phone]", _ID_NUMBER.sub("[id-number]", text))


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server: our access log, uvicorn's own access log off."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactingFilter}},
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
        },
        "loggers": {
            "medfusion": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


access_log = logging.getLogger("medfusion.access")
