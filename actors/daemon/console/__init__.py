"""The web console (CONTRACT §14): pages for people on the HTTP door, at ``/``.

- ``app``: ``Console``, its routes, the session and CSRF checks, the login
- ``sessions``: sessions, one-time login tokens, the login's rate limit
- ``security``: the security headers (CSP) and cookies
- ``asking``: the prompt box, starting a job, its live events, cancelling it
- ``live``: each job's events for the live view (server-sent events)
- ``pages``: history, a job's page and export, models, evaluations
- ``queries``: what those pages read from the run store
- ``render`` and ``charts``: Jinja2 pages, sanitised Markdown, inline SVG charts
- ``launch``: ``orchestrctl console`` (a login URL with a one-time token)
- ``templates/`` and ``static/``: the pages and their one script and stylesheet

The door mounts ``routes(door)`` (``actors.daemon.http.app.DOOR_MODULES``); Jinja2 and
markdown-it load with the first page.
"""

from __future__ import annotations

from typing import Any


def routes(door: Any) -> list[Any]:
    """The console's routes on ``door`` (a ``FrontDoor``)."""
    from actors.daemon.console.app import Console

    return site(Console(door))


def site(console: Any) -> list[Any]:
    """Every route of ``console`` (an ``app.Console``)."""
    from starlette.routing import Route

    from actors.daemon.console.asking import Asking
    from actors.daemon.console.pages import Pages

    asking, pages = Asking(console), Pages(console)
    page, api = console.page, console.api
    return [
        Route("/", page(asking.form)),
        Route("/ask", page(asking.start), methods=["POST"]),
        Route("/jobs", page(pages.history)),
        Route("/jobs/{job_id}", page(pages.job)),
        Route("/jobs/{job_id}/export", api(pages.export)),
        Route("/jobs/{job_id}/events", api(asking.events)),
        Route("/jobs/{job_id}/cancel", page(asking.cancel), methods=["POST"]),
        Route("/models", page(pages.models)),
        Route("/evaluations", page(pages.evaluations)),
        *console.routes(),
    ]
