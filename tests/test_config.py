from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chatd.config import Config, ConfigError, load_config


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('port = 9000\nhost = "0.0.0.0"\nrate_burst = 5\n')
    c = load_config(toml, {"CHATD_PORT": "9001", "CHATD_RATE_BURST": "6"}, {"port": "9002"})
    assert (c.host, c.port, c.rate_burst) == ("0.0.0.0", 9002, 6)


@pytest.mark.parametrize("env, needle", [
    ({"CHATD_PORT": "99999"}, "'port'"),
    ({"CHATD_PORT": "abc"}, "'port'"),
    ({"CHATD_NOPE": "1"}, "nope"),
    ({"CHATD_COMPRESSION": "maybe"}, "'compression'"),
    ({"CHATD_BROKER": "kafka"}, "'broker'"),
    ({"CHATD_PROFILE": "production"}, "'sms_provider'"),
])
def test_bad_settings_name_the_setting(env: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_config(None, env, {})


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        Config().port = 1  # type: ignore[misc]


def test_serve_help_lists_every_setting() -> None:
    out = subprocess.run([sys.executable, "-m", "chatd", "serve", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--host", "--port", "--data-dir", "--config", "--max-frame-bytes",
                 "--sms-provider", "--broker", "--store"):
        assert flag in out


def test_bad_flag_stops_startup_with_message() -> None:
    r = subprocess.run([sys.executable, "-m", "chatd", "serve", "--port", "-5"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "'port'" in r.stderr
