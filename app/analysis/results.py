"""The result store: one ``AnalysisResult`` per StudyInstanceUID and model key, with a read cache in front.

Results are immutable once stored (the first write of a key wins), so the in-memory cache never holds a
stale entry and a hook served from it answers without touching the database.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlalchemy import Connection, Engine, select

from app.analysis.db import insert_ignoring_conflict, results_table, utcnow
from schemas.analysis import AnalysisResult


class ResultCache:
    """A thread-safe LRU of results for one model key (hooks and worker threads share it)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, AnalysisResult] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, study_instance_uid: str) -> AnalysisResult | None:
        with self._lock:
            result = self._entries.get(study_instance_uid)
            if result is not None:
                self._entries.move_to_end(study_instance_uid)
            return result

    def put(self, result: AnalysisResult) -> None:
        if self._capacity == 0:
            return
        with self._lock:
            self._entries[result.study_instance_uid] = result
            self._entries.move_to_end(result.study_instance_uid)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class ResultStore:
    """Results of one model key: read through the cache, written once per study."""

    def __init__(self, engine: Engine, model_key: str, cache_size: int) -> None:
        self.engine = engine
        self.model_key = model_key
        self.cache = ResultCache(cache_size)

    def cached(self, study_instance_uid: str) -> AnalysisResult | None:
        """The result if it is in memory (no I/O: what a hook can afford on every call)."""
        return self.cache.get(study_instance_uid)

    def get(self, study_instance_uid: str) -> AnalysisResult | None:
        """The stored result, from the cache or the database."""
        result = self.cache.get(study_instance_uid)
        if result is not None:
            return result
        with self.engine.connect() as connection:
            row = connection.execute(
                select(results_table.c.result).where(
                    results_table.c.study_instance_uid == study_instance_uid,
                    results_table.c.model_key == self.model_key,
                )
            ).first()
        if row is None:
            return None
        result = AnalysisResult.model_validate_json(row.result)
        self.cache.put(result)
        return result


def insert_result(connection: Connection, result: AnalysisResult, model_key: str) -> bool:
    """Store a result unless one is stored for its key already; True when this call stored it."""
    statement = insert_ignoring_conflict(
        connection,
        results_table,
        {
            "study_instance_uid": result.study_instance_uid,
            "model_key": model_key,
            "result": result.model_dump_json(),
            "stored_at": utcnow(),
        },
    ).returning(results_table.c.study_instance_uid)
    return connection.execute(statement).first() is not None
