"""The operator console (``/console``) and its browser phone.

:func:`setup_console` mounts it on the app: login (``auth``), live calls, history, call
detail, Dial and "Talk to the assistant" (``pages``, ``phone``), Assistants
(``assistants``), Jinja2 templates and plain JavaScript from this package (``templates/``,
``static/``; no build step). Operators are accounts in the call-record database
(``accounts``), managed with ``vonage-bridge operator`` (``cli``).
"""

from __future__ import annotations

from aiohttp import web

from ..hub import CallHub
from ..web.keys import HUB
from . import assistants, auth, pages, phone
from .render import PREFIX


def setup_console(app: web.Application) -> None:
    """Mount the console's routes and its shutdown hook; give the app its live-call hub."""
    app[HUB] = CallHub()
    app[auth.LOGIN_GUARD] = auth.LoginGuard()
    p = PREFIX
    r = app.router
    r.add_get(p, pages.index)
    r.add_get(f"{p}/", pages.index)
    r.add_get(auth.LOGIN_PATH, auth.login_form)
    r.add_post(auth.LOGIN_PATH, auth.login)
    r.add_post(f"{p}/logout", auth.logout)
    r.add_get(f"{p}/live", pages.live)
    r.add_get(f"{p}/api/events", pages.events)
    r.add_post(f"{p}/calls/{{call_id}}/hangup", pages.hang_up)
    r.add_get(f"{p}/history", pages.history)
    r.add_get(f"{p}/calls/{{call_id}}", pages.detail)
    r.add_get(f"{p}/dial", pages.dial_form)
    r.add_post(f"{p}/dial", pages.dial)
    r.add_get(f"{p}/assistants", assistants.index)
    r.add_post(f"{p}/assistants", assistants.save)
    r.add_get(f"{p}/assistants/new", assistants.new_form)
    r.add_get(f"{p}/assistants/{{name}}", assistants.edit_form)
    r.add_post(f"{p}/assistants/{{name}}/delete", assistants.delete)
    r.add_get(f"{p}/phone", pages.phone)
    r.add_get(phone.PHONE_WS_PATH, phone.phone_socket)
    r.add_get(f"{p}/static/{{name}}", pages.asset)
    app.on_shutdown.insert(0, pages.shutdown)
