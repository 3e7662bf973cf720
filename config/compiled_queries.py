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

from django.db import DatabaseError, connections
from django.db.models import NOT_PROVIDED, Model, QuerySet, signals, sql
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
    first instance or None, `all(value)` every instance. The queryset must take `value` as a
    parameter exactly where `placeholder` is put (a filter on it), and no other parameter may equal
    the placeholder."""

    def __init__(self, build: Callable[[Any], QuerySet[M]], placeholder: Any) -> None:
        self._build = build
        self._placeholder = placeholder
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def first(self, value: Any, using: str = "default") -> M | None:
        """The first row's instance, or None (the queryset's own order decides which is first)."""
        rows = self._rows(value, using, one=True)
        return self._instance(rows[0], using) if rows else None

    def all(self, value: Any, using: str = "default") -> list[M]:
        """Every row's instance, in the queryset's order."""
        return [self._instance(row, using) for row in self._rows(value, using, one=False)]

    def _rows(self, value: Any, using: str, *, one: bool) -> list[tuple]:
        compiled = self._compiled.get(using) or self._compile(using)
        connection = connections[using]
        if compiled.locks and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = list(compiled.params)
        for position in compiled.value_positions:
            params[position] = value
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            if one:
                row = cursor.fetchone()
                return [row] if row is not None else []
            return cursor.fetchall()

    def _instance(self, raw: tuple, using: str) -> M:
        compiled, connection = self._compiled[using], connections[using]
        row = list(raw)
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


@dataclass(frozen=True)
class _CompiledInsert:
    sql: str
    fields: list  # the columns written, in the statement's order
    returning: list  # the columns the statement returns (the primary key)


class CompiledInsert(Generic[M]):
    """`model.objects.create(**values)` with the INSERT's SQL built once per database.

    Django builds an INSERT's SQL on every create; for the rows every call writes (a timeline row per
    carrier callback) that was half the cost of the create. Each create here does the rest as
    `Model.save` does: the model's defaults, each field's pre_save (auto_now_add) and its conversion
    for the database (JSON, datetimes), the pre_save and post_save signals, and the primary key read
    back from the statement. Only for models whose every column is a plain parameter (no database
    default, no expression): compiling refuses any other."""

    def __init__(self, model: type[M]) -> None:
        self.model = model
        self._compiled: dict[str, _CompiledInsert] = {}
        self._lock = threading.Lock()

    def create(self, using: str = "default", **values: Any) -> M:
        instance = self.model(**values)
        compiled = self._compiled.get(using) or self._compile(using, instance)
        connection = connections[using]
        meta = self.model._meta
        signals.pre_save.send(sender=self.model, instance=instance, raw=False, using=using, update_fields=None)
        params = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in compiled.fields]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            returned = cursor.fetchone()
        for field, value in zip(compiled.returning, returned, strict=True):
            column = field.get_col(meta.db_table)
            for convert in connection.ops.get_db_converters(column) + column.get_db_converters(connection):
                value = convert(value, column, connection)
            setattr(instance, field.attname, value)
        instance._state.adding, instance._state.db = False, using
        signals.post_save.send(
            sender=self.model, instance=instance, created=True, update_fields=None, raw=False, using=using
        )
        return instance

    def _compile(self, using: str, sample: M) -> _CompiledInsert:
        with self._lock:
            if using in self._compiled:
                return self._compiled[using]
            meta = self.model._meta
            fields = [field for field in meta.local_concrete_fields if field is not meta.auto_field]
            returning = list(meta.db_returning_fields)
            query = sql.InsertQuery(self.model)
            query.insert_values(fields, [sample])
            compiler = query.get_compiler(using=using)
            compiler.returning_fields = returning
            statements = compiler.as_sql()
            if len(statements) != 1 or not connections[using].features.can_return_columns_from_insert:
                raise ValueError(f"{self.model.__name__}: no single INSERT ... RETURNING on {using}")
            statement, params = statements[0]
            if len(params) != len(fields) or any(
                getattr(field, "db_default", None) is not NOT_PROVIDED for field in fields
            ):
                raise ValueError(f"{self.model.__name__}: a column is not a plain parameter of the INSERT")
            compiled = _CompiledInsert(sql=statement, fields=fields, returning=returning)
            self._compiled[using] = compiled
            return compiled


class CompiledUpdate(Generic[M]):
    """`instance.save(update_fields=fields)` with the UPDATE's SQL built once per database, field set,
    and pattern of NULLs (Django writes `= NULL` into the SQL for a None). As Model.save does it: each
    field's pre_save (auto_now), its conversion for the database, the pre_save and post_save signals,
    and an error when no row was updated. A value that is an expression goes through Model.save."""

    def __init__(self, model: type[M]) -> None:
        self.model = model
        self._compiled: dict[tuple, str] = {}

    def save(self, instance: M, fields: tuple[str, ...] | list[str], using: str = "default") -> None:
        fields = tuple(fields)
        meta, connection = self.model._meta, connections[using]
        targets = [meta.get_field(name) for name in fields]
        update_fields = frozenset(fields)
        signals.pre_save.send(sender=self.model, instance=instance, raw=False, using=using, update_fields=update_fields)
        values = [field.pre_save(instance, False) for field in targets]
        if any(hasattr(value, "resolve_expression") for value in values):
            instance.save(update_fields=fields, using=using)  # sends its own signals again: rare, and harmless
            return
        prepared = [field.get_db_prep_save(value, connection) for field, value in zip(targets, values, strict=True)]
        key = (using, fields, tuple(value is None for value in prepared))
        statement = self._compiled.get(key) or self._compile(key, instance, targets, values, prepared)
        params = [value for value in prepared if value is not None]
        params.append(meta.pk.get_db_prep_value(instance.pk, connection))
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            if cursor.rowcount == 0:
                raise DatabaseError("Save with update_fields did not affect any rows.")
        signals.post_save.send(
            sender=self.model, instance=instance, created=False, update_fields=update_fields, raw=False, using=using
        )

    def _compile(self, key: tuple, instance: M, targets: list, values: list, prepared: list) -> str:
        using = key[0]
        query = sql.UpdateQuery(self.model)
        query.add_update_fields([(field, None, value) for field, value in zip(targets, values, strict=True)])
        query.add_filter("pk", instance.pk)
        statement, params = query.get_compiler(using=using).as_sql()
        if len(params) != sum(value is not None for value in prepared) + 1:
            raise ValueError(f"{self.model.__name__}: a column is not a plain parameter of the UPDATE")
        self._compiled[key] = statement
        return statement


_UPDATES: dict[type[Model], CompiledUpdate] = {}


def save_fields(instance: Model, fields: tuple[str, ...] | list[str]) -> None:
    """`instance.save(update_fields=fields)` through its model's CompiledUpdate: for the rows every
    call updates several times (its attempt, its incident's deadline)."""
    model = type(instance)
    updater = _UPDATES.get(model) or _UPDATES.setdefault(model, CompiledUpdate(model))
    updater.save(instance, fields, using=instance._state.db or "default")
