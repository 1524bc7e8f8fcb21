"""`python -m gateway.cli` (or `qs-admin`): manage users, groups, providers and program access.

    users add NAME [--token T] [--group G ...]     create a user or rotate their token
    users revoke NAME                              no token reaches the user (nor their jobs') any more
    users remove NAME                              revoke, leave every group; delete if they own nothing
    groups add NAME [--member USER ...]            create a group, add members
    groups remove-member NAME USER | groups remove NAME
    providers add NAME --admin-group G [--registry R]
    providers remove-admin NAME --admin-group G
    programs grant PROVIDER/TITLE --group G [--run] [--trial]
    programs revoke PROVIDER/TITLE --group G       take a group's grant away
    programs disable PROVIDER/TITLE [--message M] | programs enable PROVIDER/TITLE
    list                                           who has what: users, groups, admins, grants
    seed FILE                                      apply a TOML seed file

A generated token is printed once; only its digest is stored. Rotating or revoking a user's token
also ends the callback tokens of the user's active jobs. A running gateway sees a change within
2 seconds (it keeps callers that briefly: gateway/read_cache.py).
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
    users.add_parser("revoke", help="no token reaches the user any more").add_argument("name")
    users.add_parser("remove", help="revoke the user and take them out of every group").add_argument("name")

    groups = areas.add_parser("groups").add_subparsers(dest="command", required=True)
    add_group = groups.add_parser("add", help="create a group and add members")
    add_group.add_argument("name")
    add_group.add_argument("--member", action="append", default=[])
    remove_member = groups.add_parser("remove-member", help="take a user out of a group")
    remove_member.add_argument("name")
    remove_member.add_argument("user")
    groups.add_parser("remove", help="the group, its memberships, administration and grants").add_argument("name")

    providers = areas.add_parser("providers").add_subparsers(dest="command", required=True)
    add_provider = providers.add_parser("add", help="create a provider administered by a group")
    add_provider.add_argument("name")
    add_provider.add_argument("--admin-group", action="append", required=True, dest="admin_groups")
    add_provider.add_argument("--registry", help="image prefix the provider's image functions must use")
    remove_admin = providers.add_parser("remove-admin", help="a group no longer administers the provider")
    remove_admin.add_argument("name")
    remove_admin.add_argument("--admin-group", required=True, dest="admin_group")

    programs = areas.add_parser("programs").add_subparsers(dest="command", required=True)
    grant = programs.add_parser("grant", help="let a group view (default) or run a provider program")
    grant.add_argument("program", metavar="PROVIDER/TITLE")
    grant.add_argument("--group", required=True)
    grant.add_argument("--run", action="store_true", help="allow running, not only viewing")
    grant.add_argument("--trial", action="store_true", help="mark this group's runs as trial runs")
    revoke = programs.add_parser("revoke", help="take a group's grant on a provider program away")
    revoke.add_argument("program", metavar="PROVIDER/TITLE")
    revoke.add_argument("--group", required=True)
    disable = programs.add_parser("disable", help="keep the program visible but refuse its runs (423)")
    disable.add_argument("program", metavar="PROVIDER/TITLE")
    disable.add_argument("--message", default=directory.DISABLED_MESSAGE)
    enable = programs.add_parser("enable")
    enable.add_argument("program", metavar="PROVIDER/TITLE")

    areas.add_parser("list", help="who has what: users and their groups, provider admins, grants")
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
        case ("users", "revoke"):
            directory.revoke_user(session, args.name)
            return f"user {args.name} revoked, with their active jobs' tokens"
        case ("users", "remove"):
            return directory.remove_user(session, args.name)
        case ("groups", "add"):
            directory.add_group(session, args.name)
            for member in args.member:
                directory.add_member(session, args.name, member)
            return f"group {args.name} ready"
        case ("groups", "remove-member"):
            directory.remove_member(session, args.name, args.user)
            return f"{args.user} left group {args.name}"
        case ("groups", "remove"):
            directory.remove_group(session, args.name)
            return f"group {args.name} removed"
        case ("providers", "add"):
            directory.add_provider(session, args.name, args.admin_groups, args.registry)
            return f"provider {args.name} ready, administered by {', '.join(args.admin_groups)}"
        case ("providers", "remove-admin"):
            directory.remove_admin(session, args.name, args.admin_group)
            return f"{args.admin_group} no longer administers {args.name}"
        case ("programs", "grant"):
            permission = "run" if args.run else "view"
            directory.grant(session, *_program(args.program), args.group, permission, args.trial)
            return f"{args.group} may {permission} {args.program}" + (" (trial)" if args.trial else "")
        case ("programs", "revoke"):
            directory.revoke_grant(session, *_program(args.program), args.group)
            return f"{args.group} no longer has a grant on {args.program}"
        case ("list", _):
            return directory.who_has_what(session)
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
