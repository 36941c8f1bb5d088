"""Structured logging: one JSON event per line, and no patient data or credential in any of them.

Callers log events with keyword fields (``log.info("hook.answered", hook_instance=..., cards=2)``).
A redaction processor removes any field whose name suggests patient data or a secret, so a careless
``log.info(..., patient_id=pid)`` cannot leak: the value is replaced before rendering.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

#: Field names that must never reach a log line with their value.
_SENSITIVE = re.compile(
    r"(patient|name|birth|dob|mrn|address|phone|email|token|authorization|password|secret|jwt|cookie|ssn)",
    re.IGNORECASE,
)
#: Fields that match the pattern above but hold no patient data.
_ALLOWED = frozenset({"event", "logger_name", "level", "timestamp", "hook_instance", "service_name", "model_name"})
REDACTED = "[redacted]"


def redact_sensitive(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: replace the value of every field whose name looks sensitive."""
    for key in list(event_dict):
        if key not in _ALLOWED and _SENSITIVE.search(key):
            event_dict[key] = REDACTED
    return event_dict


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """Configure structlog and the standard library's root logger (idempotent)."""
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_sensitive,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s", force=True)


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    """A logger writing to the *current* ``sys.stderr`` (tests and CLIs swap it after configuration)."""
    return structlog.PrintLogger(sys.stderr)


def get_logger(name: str) -> Any:
    """A lazy logger for a module: safe at import time, it takes the configuration in force when it logs."""
    return structlog.get_logger(logger_name=name)
