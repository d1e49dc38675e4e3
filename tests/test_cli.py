"""The command line as an operator meets it: help text, one-line errors, missing extras."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatd import cli
from chatd.config import Config, default_text, env_name, metavar
from tests.conftest import REPO, free_port, t

SETTINGS = [f.name for f in dataclasses.fields(Config) if f.name != "extra"]


def chatd(*args: str, env: dict[str, str] | None = None,
          cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CHATD_")}
    full |= {"COLUMNS": "200"} | (env or {})
    return subprocess.run([sys.executable, "-m", "chatd", *args], capture_output=True,
                          text=True, env=full, cwd=cwd, timeout=t(60))


def flags_of(help_text: str) -> set[str]:
    return set(re.findall(r"^\s+(--[a-z0-9-]+)", help_text, re.MULTILINE))


def one_error_line(r: subprocess.CompletedProcess[str], after_logs: bool = False) -> str:
    """The one error line of a failed run (``after_logs``: the last, after a node's log)."""
    assert r.returncode != 0, r
    lines = r.stderr.splitlines()
    assert "Traceback" not in r.stderr, r.stderr
    assert lines and (after_logs or len(lines) == 1), r.stderr
    assert lines[-1].startswith("chatd: error: "), r.stderr
    return lines[-1]


def test_serve_help_shows_each_env_and_default_once() -> None:
    r = chatd("serve", "--help")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "(default: None)" not in text and "default: None" not in text
    assert text.count("; default: ") == len(SETTINGS)
    assert flags_of(r.stdout) == {"--config"} | {
        "--" + n.replace("_", "-") for n in SETTINGS}
    for name in SETTINGS:
        flag = "--" + name.replace("_", "-")
        assert text.count(f"{flag} {metavar(name)} ") == 1, name
        assert text.count(f"{env_name(name)};") == 1, name
        assert f"[env {env_name(name)}; default: {default_text(name)}]" in text, name


def test_metavars_say_what_a_flag_takes() -> None:
    assert metavar("rate_per_second") == "N"
    assert metavar("ping_interval") == "SECONDS"
    assert metavar("redis_url") == metavar("sms_webhook_url") == "URL"
    assert metavar("data_dir") == "DIR"
    assert metavar("store") == "{sqlite,postgres}"
    assert metavar("compression") == "{true,false}"


def test_default_text_matches_the_config() -> None:
    assert default_text("port") == "8765"
    assert default_text("origins") == default_text("node_id") == "(empty)"
    assert default_text("compression") == "false"


def test_admin_help_lists_only_the_store_settings() -> None:
    r = chatd("admin", "--help")
    assert r.returncode == 0, r.stderr
    assert flags_of(r.stdout) == {"--config"} | {
        "--" + n.replace("_", "-") for n in cli.ADMIN_SETTINGS}
    assert "--port" not in r.stdout and "--sms-provider" not in r.stdout
    assert set(cli.ADMIN_SETTINGS) <= set(SETTINGS)


def test_admin_refuses_a_serve_flag_in_one_line() -> None:
    line = one_error_line(chatd("admin", "--port", "1", "words", "version"))
    assert "--port" in line or "'1'" in line


def test_missing_corpus_is_one_line(tmp_path: Path) -> None:
    r = chatd("admin", "--data-dir", str(tmp_path / "d"), "words", "lint",
              "--corpus", str(tmp_path / "missing.txt"))
    line = one_error_line(r)
    assert "missing.txt" in line and "No such file" in line
    assert r.returncode == 1


def test_missing_import_file_is_one_line(tmp_path: Path) -> None:
    r = chatd("admin", "--data-dir", str(tmp_path / "d"), "words", "import",
              str(tmp_path / "nope.txt"))
    assert "nope.txt" in one_error_line(r)


def test_refused_admin_command_is_one_line(tmp_path: Path, wordlist: Path) -> None:
    r = chatd("admin", "--data-dir", str(tmp_path / "d"), "--wordlists", str(wordlist),
              "grant-moderator", "13812345678")
    assert "no account" in one_error_line(r)


def test_bad_setting_is_one_line_exit_2() -> None:
    r = chatd("serve", env={"CHATD_PORT": "abc"})
    assert "'port'" in one_error_line(r) and r.returncode == 2


def test_usage_error_is_one_line_exit_2() -> None:
    r = chatd("serve", "--no-such-flag")
    assert "--no-such-flag" in one_error_line(r) and r.returncode == 2


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        r = chatd("serve", "--port", str(busy.getsockname()[1]), "--data-dir",
                  str(tmp_path / "d"))
    assert "address already in use" in one_error_line(r, after_logs=True).lower()


def test_chatd_debug_is_not_taken_for_a_setting(tmp_path: Path, wordlist: Path) -> None:
    r = chatd("admin", "--data-dir", str(tmp_path / "d"), "--wordlists", str(wordlist),
              "words", "version", env={"CHATD_DEBUG": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("version 0 ")


def test_unexpected_error_is_one_line_unless_debug(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    def bug(config: Config) -> int:
        raise KeyError("oops")

    monkeypatch.setattr(cli, "_serve", bug)
    monkeypatch.delenv("CHATD_DEBUG", raising=False)
    argv = ["serve", "--data-dir", str(tmp_path)]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("chatd: error: unexpected KeyError")
    assert "CHATD_DEBUG=1" in err
    monkeypatch.setenv("CHATD_DEBUG", "1")
    with pytest.raises(KeyError):
        cli.main(argv)


# Runs bench.load as ``python -m`` would, with the bench extras made unimportable.
_WITHOUT_EXTRAS = """
import runpy, sys
from bench import BENCH_EXTRAS

class NoExtras:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in BENCH_EXTRAS:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoExtras)
sys.argv = [sys.argv[1], "--help"]  # imports fail first; if not, only the help runs
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("module", ["bench.load", "bench.ceiling"])
def test_bench_without_extras_says_how_to_install_them(module: str) -> None:
    r = subprocess.run([sys.executable, "-c", _WITHOUT_EXTRAS, module], capture_output=True,
                       text=True, cwd=REPO, timeout=t(60))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith(f"python -m {module}: error: module ")
    assert "pip install -e '.[bench]'" in lines[0] and "make dev" in lines[0]


def test_readme_client_snippet_runs_twice_against_a_default_node(tmp_path: Path) -> None:
    """The snippet as pasted into a file, twice against one node on default settings (a second
    SMS code to the same phone within a minute would be rate_limited)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    snippet = re.search(r"```python\n(.*?)```", readme, re.DOTALL)
    assert snippet and "ws://127.0.0.1:8765/ws" in snippet[1]
    port = free_port()
    script = tmp_path / "hello.py"
    script.write_text(snippet[1].replace("8765", str(port)), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATD_")}
    env["PYTHONPATH"] = str(REPO)
    log = (tmp_path / "node.log").open("wb")
    node = subprocess.Popen([sys.executable, "-m", "chatd", "serve", "--port", str(port),
                             "--data-dir", str(tmp_path / "var")], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + t(30)
        while True:
            assert node.poll() is None, (tmp_path / "node.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the node did not start"
                time.sleep(0.1)
        outputs = []
        for _ in range(2):
            r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                               cwd=tmp_path, env=env, timeout=t(60))
            assert r.returncode == 0, r.stderr
            outputs.append(r.stdout.split(" conversations:")[0])
        assert outputs[0] == outputs[1] and outputs[0].startswith("user ")  # the same account
    finally:
        node.terminate()
        node.wait(timeout=t(20))
        log.close()
