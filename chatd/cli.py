"""Command line: ``chatd serve`` and ``chatd admin``. The only module that reads the environment."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import sys
from pathlib import Path

from chatd.config import SETTINGS_HELP, Config, ConfigError, load_config

__all__ = ["main"]


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve", help="run one chatd node",
        description="Run one chatd node. Every setting can also come from a TOML file "
                    "(--config) or an environment variable CHATD_<NAME>; flags win over the "
                    "environment, which wins over the file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
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
    args = vars(parser.parse_args(argv))
    command = args.pop("command")
    if command == "serve":
        config_path = args.pop("config")
        try:
            config = load_config(config_path, os.environ, args)
        except ConfigError as exc:
            print(f"chatd: {exc}", file=sys.stderr)
            return 2
        return _serve(config)
    return 2


def _serve(config: Config) -> int:
    import uvloop

    from chatd.server import run

    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(run(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
