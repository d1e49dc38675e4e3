"""Command line: ``chatd serve`` and ``chatd admin``. The only module that reads the environment."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from chatd.config import (
    SETTINGS_HELP,
    Config,
    ConfigError,
    default_text,
    env_name,
    load_config,
    metavar,
)

__all__ = ["main"]

# Set to 1 for the traceback of an unexpected error (not a setting: never handed to the config).
DEBUG_ENV = "CHATD_DEBUG"

# The settings ``chatd admin`` uses: where the store is, and the base word lists.
ADMIN_SETTINGS = ("data_dir", "store", "sqlite_synchronous", "postgres_dsn",
                  "postgres_pool_min", "postgres_pool_max", "wordlists")
# And those ``chatd admin campaign send`` adds: how texts leave, and how fast.
CAMPAIGN_SETTINGS = ("sms_provider", "sms_webhook_url", "campaign_rate_per_second")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"chatd: error: {message} (see: {self.prog} --help)\n")


def _serve_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "serve", help="run one chatd node",
        description="Run one chatd node. Every setting can also come from a TOML file "
                    "(--config) or an environment variable CHATD_<NAME>; flags win over the "
                    "environment, which wins over the file.")
    _settings(p, [f.name for f in dataclasses.fields(Config) if f.name != "extra"])


def _admin_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "admin", help="roles, word lists and campaigns, on the configured store",
        description="Administer the store a node is configured with. It reads the same "
                    "--config file and CHATD_* environment as serve; the flags below are the "
                    "settings it uses. Running nodes pick word-list changes up within about a "
                    "second.")
    _settings(p, ADMIN_SETTINGS)
    cmd = p.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    for name, help_ in (("grant-moderator", "give the account of PHONE the moderator role"),
                        ("revoke-moderator", "make the account of PHONE a plain user")):
        c = cmd.add_parser(name, help=help_, description=help_)
        c.add_argument("phone", metavar="PHONE")
    words = cmd.add_parser("words", help="word-list changes, import, export, lint")
    wcmd = words.add_subparsers(dest="words_command", required=True, metavar="COMMAND")
    add = wcmd.add_parser("add", help="add (or change) an entry")
    add.add_argument("word", metavar="WORD")
    add.add_argument("--category", default="default", metavar="CATEGORY",
                     help="category of the entry (default: default)")
    add.add_argument("--action", default="block", choices=("block", "mask", "review"),
                     help="what a match does (default: block)")
    for name in ("remove", "allow-add", "allow-remove"):
        wcmd.add_parser(name, help=f"{name.replace('-', ' ')} a word") \
            .add_argument("word", metavar="WORD")
    wcmd.add_parser("import", help="add every entry and allow word of a word-list file") \
        .add_argument("file", type=Path, metavar="FILE")
    wcmd.add_parser("export", help="the effective lists in the word-list format") \
        .add_argument("--out", type=Path, default=None, metavar="FILE",
                      help="write to FILE (default: standard output)")
    wcmd.add_parser("version", help="store version, filter hash and sizes")
    wcmd.add_parser("lint", help="python -m filters lint over the effective lists") \
        .add_argument("--corpus", type=_readable_file, required=True, metavar="FILE",
                      help="clean texts, one a line, that no entry should block")
    _campaign_parser(cmd)


def _campaign_parser(cmd: argparse._SubParsersAction[_Parser]) -> None:
    campaign = cmd.add_parser("campaign", help="marketing SMS to the users who consented")
    ccmd = campaign.add_subparsers(dest="campaign_command", required=True, metavar="COMMAND")
    send = ccmd.add_parser(
        "send", help="send a text to every user whose marketing consent is on",
        description="Send the text of FILE by SMS to every user whose marketing consent is "
                    "on (not banned), from this process, at most campaign_rate_per_second a "
                    "second. The text passes the word filter (a block entry refuses it) and "
                    "gets the unsubscribe hint 回T退订 when it lacks it. Ctrl-C stops it "
                    "(the campaign ends interrupted). One campaign runs at a time.")
    send.add_argument("--text-file", type=_readable_file, required=True, metavar="FILE",
                      help="the text, UTF-8")
    send.add_argument("--id", default=None, metavar="ID",
                      help="the campaign's id (default: a new one); sending again with the "
                           "same id and text sends nothing twice")
    _settings(send, CAMPAIGN_SETTINGS, with_config=False)
    for name, help_ in (("show", "a campaign's counts and state"),
                        ("cancel", "stop a running campaign (or one a crash left running)")):
        ccmd.add_parser(name, help=help_, description=help_).add_argument("id", metavar="ID")


def _readable_file(text: str) -> Path:
    """An input file, checked here: ``lint`` hands it to a subprocess, whose errors would
    otherwise end in that process's traceback."""
    path = Path(text)
    with path.open("rb"):  # OSError: a one-line error at the entry point
        pass
    return path


def _settings(p: argparse.ArgumentParser, names: Sequence[str],
              with_config: bool = True) -> None:
    if with_config:
        p.add_argument("--config", type=Path, default=None, metavar="FILE",
                       help="TOML configuration file [default: none]")
    for name in names:
        flag = "--" + name.replace("_", "-")
        text = f"{SETTINGS_HELP.get(name, name)} [env {env_name(name)}; " \
               f"default: {default_text(name)}]"
        p.add_argument(flag, dest=name, default=None, metavar=metavar(name),
                       help=text.replace("%", "%%"))


def main(argv: list[str] | None = None) -> int:
    """``chatd``: every error ends in one line on stderr and a non-zero exit status; set
    CHATD_DEBUG=1 for the traceback of an unexpected one."""
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if debug:
            raise
        if isinstance(exc, ConfigError):
            print(f"chatd: error: {exc}", file=sys.stderr)
            return 2
        if _expected(exc):
            print(f"chatd: error: {_describe(exc)}", file=sys.stderr)
        else:
            print(f"chatd: error: unexpected {type(exc).__name__}: {_describe(exc)} "
                  f"(set {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        return 1


# The project's own errors, by module: one can only be raised once its module is imported,
# so the check imports nothing.
_OWN_ERRORS = (("chatd.errors", "ChatError"), ("chatd.services.admin", "AdminError"),
               ("chatd.services.sms", "SmsError"), ("chatd.store.base", "StoreError"),
               ("chatd.datadir", "DataDirBusy"), ("filters.wordlist", "WordListError"))


def _expected(exc: BaseException) -> bool:
    if isinstance(exc, OSError | ConfigError):
        return True
    for module, name in _OWN_ERRORS:
        loaded = sys.modules.get(module)
        kind = getattr(loaded, name, None)
        if isinstance(kind, type) and isinstance(exc, kind):
            return True
    return False


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename is not None else ""
        return f"{where}{exc.strerror}"
    return str(exc) or type(exc).__name__


def _main(argv: list[str] | None) -> int:
    parser = _Parser(prog="chatd", description="chatd chat and matching server")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _serve_parser(sub)
    _admin_parser(sub)
    args = vars(parser.parse_args(argv))
    command = args.pop("command")
    admin = {k: args.pop(k) for k in list(args) if k not in _SETTING_NAMES}
    config_path = args.pop("config", None)
    env = {k: v for k, v in os.environ.items() if k != DEBUG_ENV}
    config = load_config(config_path, env, args)
    if command == "serve":
        if config.workers > 1:
            from chatd.workers import supervise
            return supervise(config, sys.argv[1:] if argv is None else argv)
        return _serve(config)
    if command == "admin":
        return _admin(config, admin)
    return 2


_SETTING_NAMES = {f.name for f in dataclasses.fields(Config)} | {"config"}


def _admin(config: Config, args: dict[str, Any]) -> int:
    import asyncio

    from chatd.services.admin import Admin

    async def run() -> int:
        async with Admin(config) as admin:
            command = args["admin_command"]
            if command in ("grant-moderator", "revoke-moderator"):
                role = "moderator" if command == "grant-moderator" else "user"
                await admin.set_role(args["phone"], role)
                return 0
            if command == "campaign":
                campaign = args["campaign_command"]
                if campaign == "send":
                    return await admin.campaign_send(args["text_file"], args["id"])
                if campaign == "show":
                    await admin.campaign_show(args["id"])
                else:
                    await admin.campaign_cancel(args["id"])
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

    return asyncio.run(run())


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
