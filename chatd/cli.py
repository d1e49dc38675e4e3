"""Command line: ``chatd serve`` and ``chatd admin``. The only module that reads the environment."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Any

from chatd.config import SETTINGS_HELP, Config, ConfigError, load_config

__all__ = ["main"]


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve", help="run one chatd node",
        description="Run one chatd node. Every setting can also come from a TOML file "
                    "(--config) or an environment variable CHATD_<NAME>; flags win over the "
                    "environment, which wins over the file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _settings(p)


def _admin_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "admin", help="roles and word lists, on the configured store",
        description="Administer the store a node is configured with (same settings as "
                    "serve: --data-dir, --store, --postgres-dsn, --wordlists, ...). Running "
                    "nodes pick word-list changes up within about a second.")
    _settings(p)
    cmd = p.add_subparsers(dest="admin_command", required=True)
    for name, help_ in (("grant-moderator", "give the account of PHONE the moderator role"),
                        ("revoke-moderator", "make the account of PHONE a plain user")):
        c = cmd.add_parser(name, help=help_)
        c.add_argument("phone")
    words = cmd.add_parser("words", help="word-list changes, import, export, lint")
    wcmd = words.add_subparsers(dest="words_command", required=True)
    add = wcmd.add_parser("add", help="add (or change) an entry")
    add.add_argument("word")
    add.add_argument("--category", default="default")
    add.add_argument("--action", default="block", choices=("block", "mask", "review"))
    for name in ("remove", "allow-add", "allow-remove"):
        wcmd.add_parser(name, help=f"{name.replace('-', ' ')} a word").add_argument("word")
    wcmd.add_parser("import", help="add every entry and allow word of a word-list file") \
        .add_argument("file", type=Path)
    wcmd.add_parser("export", help="the effective lists in the word-list format") \
        .add_argument("--out", type=Path, default=None)
    wcmd.add_parser("version", help="store version, filter hash and sizes")
    wcmd.add_parser("lint", help="python -m filters lint over the effective lists") \
        .add_argument("--corpus", type=Path, required=True)


def _settings(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help="TOML configuration file")
    defaults = Config()
    for f in dataclasses.fields(Config):
        if f.name == "extra":
            continue
        default = getattr(defaults, f.name)
        if isinstance(default, tuple):
            default = ",".join(default)
        flag = "--" + f.name.replace("_", "-")
        env = "CHATD_" + f.name.upper()
        p.add_argument(flag, dest=f.name, default=None, metavar=f.name.split("_")[-1].upper(),
                       help=f"{SETTINGS_HELP.get(f.name, f.name)} [env {env}; default: "
                            f"{default!s}]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chatd", description="chatd chat and matching server")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _admin_parser(sub)
    args = vars(parser.parse_args(argv))
    command = args.pop("command")
    admin = {k: args.pop(k) for k in list(args) if k not in _SETTING_NAMES}
    config_path = args.pop("config", None)
    try:
        config = load_config(config_path, os.environ, args)
    except ConfigError as exc:
        print(f"chatd: {exc}", file=sys.stderr)
        return 2
    if command == "serve":
        return _serve(config)
    if command == "admin":
        return _admin(config, admin)
    return 2


_SETTING_NAMES = {f.name for f in dataclasses.fields(Config)} | {"config"}


def _admin(config: Config, args: dict[str, Any]) -> int:
    import asyncio

    from chatd.services.admin import Admin, AdminError

    async def run() -> int:
        async with Admin(config) as admin:
            command = args["admin_command"]
            if command in ("grant-moderator", "revoke-moderator"):
                role = "moderator" if command == "grant-moderator" else "user"
                await admin.set_role(args["phone"], role)
                return 0
            words = args["words_command"]
            if words == "add":
                await admin.change("add", args["word"], args["category"], args["action"])
            elif words in ("remove", "allow-add", "allow-remove"):
                await admin.change(words.replace("-", "_"), args["word"])
            elif words == "import":
                await admin.import_file(args["file"])
            elif words == "export":
                await admin.export(args["out"])
            elif words == "version":
                await admin.version()
            elif words == "lint":
                return await admin.lint(args["corpus"])
            return 0

    try:
        return asyncio.run(run())
    except AdminError as exc:
        print(f"chatd admin: {exc}", file=sys.stderr)
        return 1


def _serve(config: Config) -> int:
    import uvloop

    from chatd.server import run

    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A 0.5 ms GIL switch interval: the SQLite thread and the event loop hand over sooner,
    # which cut p99 delivery latency about threefold in bench.latency.
    sys.setswitchinterval(0.0005)
    if config.log_level.upper() != "DEBUG":
        # websockets logs every connection at INFO: too much for a busy node.
        logging.getLogger("chatd.ws").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(run(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
