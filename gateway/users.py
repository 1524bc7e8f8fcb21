"""`python -m gateway.users add NAME [--token T]`: create a user (or rotate their token).

The token is printed once when generated here; only its digest is stored.
"""

from __future__ import annotations

import argparse

from gateway import db
from gateway.auth import new_token, seed_user, valid_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.users")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="create a user, or give an existing user a new token")
    add.add_argument("name")
    add.add_argument("--token", help="use this token instead of generating one")
    args = parser.parse_args(argv)
    if not valid_name(args.name):
        parser.error("user names use letters, digits and _ . @ - (at most 150)")
    db.create_schema()
    token = args.token or new_token()
    with db.session_factory()() as session:
        seed_user(session, args.name, token)
    print(f"user {args.name} ready" + ("" if args.token else f"; token (shown once): {token}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
