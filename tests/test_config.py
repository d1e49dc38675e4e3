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


@pytest.mark.parametrize("changes, needle", [
    ({"api_keys": ("no-separator-secret-0123456789",)}, "item 1 is not NAME:SECRET"),
    ({"api_keys": ("app:short",)}, "needs 16"),
    ({"api_keys": ("app:first-secret-0123456789", "app:other-secret-0123456789")},
     "repeats"),
    ({"api_keys": ("bad name:first-secret-0123456789",)}, "NAME:SECRET"),
    ({"sms_inbound_secret": "short"}, "'sms_inbound_secret'"),
    ({"verification_url": "ftp://x"}, "'verification_url'"),
    ({"campaign_rate_per_second": 0.0}, "'campaign_rate_per_second'"),
    ({"api_port": 8765}, "'api_port'"),
])
def test_api_settings_are_checked_without_quoting_secrets(changes: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as refused:
        Config(**changes)
    for value in changes.values():
        for item in value if isinstance(value, tuple) else (value,):
            secret = str(item).partition(":")[2] or str(item)
            if len(secret) >= 10:
                assert secret not in str(refused.value)


def test_secrets_stay_out_of_the_repr_and_of_type_errors(tmp_path: Path) -> None:
    c = Config(api_keys=("app:first-secret-0123456789",), sms_inbound_secret="s" * 20)
    assert c.api_enabled and "first-secret" not in repr(c) and "s" * 20 not in repr(c)
    assert not Config().api_enabled
    toml = tmp_path / "c.toml"
    toml.write_text("sms_inbound_secret = 12345678901234567890\n")
    with pytest.raises(ConfigError) as refused:
        load_config(toml, {}, {})
    assert "1234567890" not in str(refused.value)
