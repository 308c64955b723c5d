"""Checking a configuration table against a frozen dataclass: every key known, every
value of its annotated type (ints accepted as floats), numbers in range; the offending key
is named (``models[1].rpm: expected a number, got 'fast'``)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from messages.errors import ConfigError


def type_name(tp: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def coerce(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted as floats."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for member in inner[:-1]:
            try:
                return coerce(key, value, member)
            except ConfigError:
                continue
        return coerce(key, value, inner[-1])
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(key, f"expected a list, got {value!r}")
        item = typing.get_args(tp)[0]
        return tuple(coerce(f"{key}[{i}]", v, item) for i, v in enumerate(value))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"expected a number, got {value!r}")
        return float(value)
    if tp in (int, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise ConfigError(key, f"expected {type_name(tp)}, got {value!r}")
        return value
    return value


def build(cls: type[Any], data: Any, prefix: str, skip: tuple[str, ...] = ()) -> Any:
    """``data`` (a table) as ``cls``, checked: unknown keys and wrong types are refused."""
    if not isinstance(data, Mapping):
        raise ConfigError(prefix, f"expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)} - set(skip)
    ConfigError.check_keys(prefix, data, sorted(names))
    values = {k: coerce(f"{prefix}.{k}", v, hints[k]) for k, v in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:  # a required key is missing
        raise ConfigError(prefix, str(exc)) from None


def positive(key: str, value: float | None, *, allow_zero: bool = False) -> None:
    """Refuses a negative ``value`` (or zero, unless ``allow_zero``)."""
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise ConfigError(key, f"must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
