"""`python -m gateway.cli` (or `qs-admin`): manage users, groups, providers and program access.

    users add NAME [--token T] [--group G ...]     create a user or rotate their token
    groups add NAME [--member USER ...]            create a group, add members
    providers add NAME --admin-group G [--registry R]
    programs grant PROVIDER/TITLE --group G [--run] [--trial]
    programs disable PROVIDER/TITLE [--message M] | programs enable PROVIDER/TITLE
    seed FILE                                      apply a TOML seed file

A generated token is printed once; only its digest is stored.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlalchemy.orm import Session

from core.settings import Settings
from gateway import db, directory


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway.cli", description=__doc__.split("\n\n")[0])
    areas = parser.add_subparsers(dest="area", required=True)

    users = areas.add_parser("users").add_subparsers(dest="command", required=True)
    add_user = users.add_parser("add", help="create a user, or give an existing user a new token")
    add_user.add_argument("name")
    add_user.add_argument("--token", help="use this token instead of generating one")
    add_user.add_argument("--group", action="append", default=[], help="also add the user to this group")

    groups = areas.add_parser("groups").add_subparsers(dest="command", required=True)
    add_group = groups.add_parser("add", help="create a group and add members")
    add_group.add_argument("name")
    add_group.add_argument("--member", action="append", default=[])

    providers = areas.add_parser("providers").add_subparsers(dest="command", required=True)
    add_provider = providers.add_parser("add", help="create a provider administered by a group")
    add_provider.add_argument("name")
    add_provider.add_argument("--admin-group", action="append", required=True, dest="admin_groups")
    add_provider.add_argument("--registry", help="image prefix the provider's image functions must use")

    programs = areas.add_parser("programs").add_subparsers(dest="command", required=True)
    grant = programs.add_parser("grant", help="let a group view (default) or run a provider program")
    grant.add_argument("program", metavar="PROVIDER/TITLE")
    grant.add_argument("--group", required=True)
    grant.add_argument("--run", action="store_true", help="allow running, not only viewing")
    grant.add_argument("--trial", action="store_true", help="mark this group's runs as trial runs")
    disable = programs.add_parser("disable", help="keep the program visible but refuse its runs (423)")
    disable.add_argument("program", metavar="PROVIDER/TITLE")
    disable.add_argument("--message", default=directory.DISABLED_MESSAGE)
    enable = programs.add_parser("enable")
    enable.add_argument("program", metavar="PROVIDER/TITLE")

    seed = areas.add_parser("seed", help="apply a TOML seed file")
    seed.add_argument("file", type=Path)
    return parser


def _program(name: str) -> tuple[str, str]:
    provider, _, title = name.partition("/")
    if not provider or not title:
        raise directory.DirectoryError("name the program as PROVIDER/TITLE")
    return provider, title


def run(database: db.Database, args: argparse.Namespace) -> str:
    with database.session() as session:
        message = _apply(session, args)
        session.commit()
    return message


def _apply(session: Session, args: argparse.Namespace) -> str:
    match (args.area, getattr(args, "command", None)):
        case ("users", "add"):
            token = args.token or directory.new_token()
            directory.add_user(session, args.name, token)
            for group in args.group:
                directory.add_member(session, group, args.name)
            return f"user {args.name} ready" + ("" if args.token else f"; token (shown once): {token}")
        case ("groups", "add"):
            directory.add_group(session, args.name)
            for member in args.member:
                directory.add_member(session, args.name, member)
            return f"group {args.name} ready"
        case ("providers", "add"):
            directory.add_provider(session, args.name, args.admin_groups, args.registry)
            return f"provider {args.name} ready, administered by {', '.join(args.admin_groups)}"
        case ("programs", "grant"):
            permission = "run" if args.run else "view"
            directory.grant(session, *_program(args.program), args.group, permission, args.trial)
            return f"{args.group} may {permission} {args.program}" + (" (trial)" if args.trial else "")
        case ("programs", "disable" | "enable"):
            disabled = args.command == "disable"
            directory.set_disabled(session, *_program(args.program), disabled, getattr(args, "message", None))
            return f"{args.program} {args.command}d"
        case ("seed", _):
            directory.seed(session, args.file)
            return f"seeded from {args.file}"
    raise directory.DirectoryError("unknown command")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    database = db.Database(Settings().db_url)
    database.create_schema()
    try:
        print(run(database, args))
    except directory.DirectoryError as error:
        parser.exit(2, f"error: {error}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
