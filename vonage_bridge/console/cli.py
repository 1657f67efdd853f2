"""``vonage-bridge operator ...``: the operator console's accounts, from the shell.

::

    vonage-bridge operator add NAME --password-stdin     # password: first line of stdin
    vonage-bridge operator passwd NAME --password-stdin  # also ends NAME's sessions
    vonage-bridge operator list
    vonage-bridge operator remove NAME                    # also ends NAME's sessions

Without ``--password-stdin`` the password is asked twice on the terminal (not echoed). The
database is ``DATABASE_URL`` (the environment, after ``--env-file``, default ``.env``), the
one the service writes call records to; its tables are created if missing. The password is
never printed or logged.

Exit status: 0 done; 1 the operator exists (``add``) or does not (``passwd``, ``remove``),
or the database cannot be used; 2 bad usage, a bad name or password, or a bad ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from typing import TextIO

from dotenv import load_dotenv
from pydantic import ValidationError

from ..config import StoreSettings
from ..store import SqlCallStore
from .accounts import Accounts, check_name

EXIT_OK = 0
EXIT_NOT_DONE = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vonage-bridge operator", description="Operator console accounts."
    )
    parser.add_argument("--env-file", default=".env", help="dotenv file to load (default .env)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("add", "create an operator"), ("passwd", "change a password")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("name")
        p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    sub.add_parser("list", help="list the operators")
    p = sub.add_parser("remove", help="delete an operator and its sessions")
    p.add_argument("name")
    return parser


def read_password(from_stdin: bool, stdin: TextIO) -> str:
    """The new password: the first line of ``stdin``, or asked twice on the terminal.

    Raises:
        ValueError: empty stdin, or the two typed passwords differ.
    """
    if from_stdin:
        line = stdin.readline()
        if not line:
            raise ValueError("--password-stdin: nothing on stdin")
        return line.rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise ValueError("the passwords differ")
    return first


async def run(args: argparse.Namespace, database_url: str, stdin: TextIO, out: TextIO) -> int:
    """Carry out one parsed command; the exit status.

    Raises:
        ValueError: a bad name or password.
    """
    password = None
    if args.command in ("add", "passwd"):
        check_name(args.name)
        password = read_password(args.password_stdin, stdin)
    store = await SqlCallStore.open(database_url)
    try:
        accounts = Accounts(store)
        if args.command == "add":
            assert password is not None
            if not await accounts.add(args.name, password):
                print(f"operator {args.name} exists already", file=out)
                return EXIT_NOT_DONE
            print(f"operator {args.name} added", file=out)
        elif args.command == "passwd":
            assert password is not None
            if not await accounts.set_password(args.name, password):
                print(f"no operator {args.name}", file=out)
                return EXIT_NOT_DONE
            print(f"password of {args.name} changed; its sessions ended", file=out)
        elif args.command == "remove":
            if not await accounts.remove(args.name):
                print(f"no operator {args.name}", file=out)
                return EXIT_NOT_DONE
            print(f"operator {args.name} removed", file=out)
        else:
            for op in await accounts.list():
                print(f"{op.name}\tcreated {op.created_at:%Y-%m-%d %H:%M} UTC", file=out)
    finally:
        await store.close()
    return EXIT_OK


def main(argv: list[str], stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    """``vonage-bridge operator ARGS``; the exit status (see the module docstring)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    load_dotenv(args.env_file, override=False)
    try:
        store_settings = StoreSettings.model_validate(
            {k: v for k in ("DATABASE_URL",) if (v := os.environ.get(k))}
        )
    except ValidationError as exc:
        reason = "; ".join(e["msg"] for e in exc.errors())
        print(f"vonage-bridge operator: DATABASE_URL: {reason}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(run(args, store_settings.database_url, stdin, out))
    except ValueError as exc:
        print(f"vonage-bridge operator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # the database cannot be opened or used: one line, no traceback
        print(f"vonage-bridge operator: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return EXIT_NOT_DONE
