"""Querysets compiled to SQL once and run many times: for the few statements every call runs.

Django compiles a queryset to SQL each time it runs it. For the two locking statements that every
dial and every carrier callback starts with (orchestrator.services._lock_attempt_where), compiling
cost more of the process's CPU than anything else in them (py-spy on a dial: a third of the time in
the locks was `as_sql`). A CompiledQuery builds its queryset once per database with a placeholder
value, keeps the SQL, and on each run sends it with the real value and builds the instances the way
Django's ModelIterable does: the backend's and the fields' converters (SQLite's datetimes, JSON),
and the select_related objects. Locking clauses (select_for_update) are part of the SQL it keeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    value_positions: tuple[int, ...]
    model: type[Model]
    locks: bool
    fields_start: int
    fields_end: int
    init_list: list[str]
    converters: list[tuple[int, tuple[list, Any]]]
    related_populators: list


class CompiledQuery(Generic[M]):
    """`build(value)` gives the queryset; `first(value)` runs its SQL with `value` and returns the
    first instance or None. The queryset must take `value` as a parameter exactly where `placeholder`
    is put (a filter on it), and no other parameter may equal the placeholder."""

    def __init__(self, build: Callable[[Any], QuerySet[M]], placeholder: Any) -> None:
        self._build = build
        self._placeholder = placeholder
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def first(self, value: Any, using: str = "default") -> M | None:
        compiled = self._compiled.get(using) or self._compile(using)
        connection = connections[using]
        if compiled.locks and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = list(compiled.params)
        for position in compiled.value_positions:
            params[position] = value
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        row = list(row)
        for position, (converters, expression) in compiled.converters:
            for convert in converters:
                row[position] = convert(row[position], expression, connection)
        instance = compiled.model.from_db(using, compiled.init_list, row[compiled.fields_start : compiled.fields_end])
        for populator in compiled.related_populators:
            populator.populate(row, instance)
        return instance

    def _compile(self, using: str) -> _Compiled:
        with self._lock:
            if using in self._compiled:
                return self._compiled[using]
            queryset = self._build(self._placeholder).using(using)
            compiler = queryset.query.get_compiler(using=using)
            sql, params = compiler.as_sql()
            positions = tuple(i for i, param in enumerate(params) if param == self._placeholder)
            if not positions:
                raise ValueError("the queryset does not take the placeholder as a parameter")
            select, klass_info = compiler.select, compiler.klass_info
            start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
            converters = compiler.get_converters([column[0] for column in select[: compiler.col_count]])
            compiled = _Compiled(
                sql=sql,
                params=tuple(params),
                value_positions=positions,
                model=klass_info["model"],
                locks=queryset.query.select_for_update,
                fields_start=start,
                fields_end=end,
                init_list=[column[0].target.attname for column in select[start:end]],
                converters=list(converters.items()),
                related_populators=get_related_populators(klass_info, select, using),
            )
            self._compiled[using] = compiled
            return compiled
