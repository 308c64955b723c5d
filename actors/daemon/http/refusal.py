"""What the translating doors (Responses, Messages) share: ``Refused``, a 400 that names
the field it refuses, and ``check_fields``, which walks a request's fields against a door's
lists: applied, accepted only with certain values, refused with a reason, else unknown."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from actors.daemon.http.errors import HttpError


class Refused(HttpError):
    """A request this door will not run: a 400 naming the field (``param``)."""

    def __init__(self, param: str, message: str, code: str = "unsupported_parameter") -> None:
        super().__init__(400, f"{param}: {message}", code, param=param)


def check_fields(
    request: Mapping[str, Any],
    *,
    applied: Collection[str],
    refused: Mapping[str, str],
    accepted: Mapping[str, Collection[Any]],
    unknown: str,
) -> None:
    """Every field of ``request`` is applied, accepted with one of its allowed values, or
    ``Refused`` by name (``unknown`` says why a field no list names is refused)."""
    for field, value in request.items():
        if field in applied or value is None:
            continue
        if field in refused:
            raise Refused(field, refused[field])
        if field in accepted:
            if value not in accepted[field]:
                raise Refused(field, f"{json.dumps(value)} is not supported")
            continue
        raise Refused(field, unknown)
