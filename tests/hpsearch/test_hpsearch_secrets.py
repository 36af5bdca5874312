"""No password leaks: a password planted in every form a URL can carry it, then train, search (SQLite and a real
PostgreSQL server), status, report and failing connections; every file in the run and search folders, every line
babysit logged or printed, and the report are searched for it, and it is nowhere.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pg_server import SECRET_URL, require
from typer.testing import CliRunner

from babysit._redact import redact_config, redact_text, redact_url
from babysit.cli import app

runner = CliRunner()
SECRET = "pg-S3cret-Zq9"  # the password of the server's second role (scripts/ensure_postgres.sh)
ODD = "S3c@r/e:t?x9"  # a password that needs percent-encoding, written raw and encoded
ENCODED = "S3c%40r%2Fe%3At%3Fx9"


def forms(password: str, host: str = "db.example.org", port: int = 5432) -> list[str]:
    """The same password in every place a URL can hold one."""
    return [
        f"postgresql://alice:{password}@{host}:{port}/search",
        f"postgresql+psycopg://alice:{password}@{host}:{port}/search",
        f"postgresql://alice@{host}:{port}/search?password={password}&sslmode=disable",
        f"postgresql://:{password}@{host}:{port}/search",
        f"postgresql://alice:{password}@{host}:notaport/search",  # SQLAlchemy cannot parse it
        f"postgresql://alice:{password}@{host}:{port},{host}:{port + 1}/search",  # several hosts
        f"host={host} user=alice password={password} dbname=search",  # libpq's key=value form
    ]


def leaks(text: str, secrets: tuple[str, ...]) -> list[str]:
    """The secrets (and the tail of each after an @, /, : or ?) that ``text`` shows."""
    found = []
    for secret in secrets:
        pieces = {secret}
        for sep in "@/:?":
            pieces |= {p for p in secret.split(sep) if len(p) >= 3}
        pieces -= {"x9"}
        found += [p for p in pieces if p in text]
    return found


def files_text(*folders: Path) -> str:
    out = []
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                out.append(f"--- {path}\n" + path.read_bytes().decode("latin-1"))
    return "\n".join(out)


CONFIG = """
name = "leak"
runs_dir = "{runs}"
[data]
source = "spiral"
[model]
kind = "mlp"
hidden = [8]
[train]
epochs = 1
monitor = false
[optimizer]
name = "sgd"
lr = 0.1
[search]
strategy = "random"
trials = 2
storage = "{storage}"
[search.space]
"optimizer.lr" = {{loguniform = [1e-2, 1.0]}}
"""


def _config(tmp: Path, storage: str, name: str = "leak.toml") -> Path:
    path = tmp / name
    path.write_text(CONFIG.format(runs=tmp / "runs", storage=storage.replace('"', '\\"')))
    return path


@pytest.mark.parametrize("url", forms(SECRET) + forms(ODD) + forms(ENCODED))
def test_every_url_form_is_redacted(url: str) -> None:
    for shown in (redact_url(url) if "://" in url else redact_text(url), redact_text(f"failed: '{url}' (x)"),
                  str(redact_config({"search": {"storage": url}})), redact_text(repr({"password": SECRET}))):
        assert not leaks(shown, (SECRET, ODD, ENCODED)), shown
        assert "***" in shown


def test_a_saved_config_says_where_the_secret_is(tmp_path: Path) -> None:
    from babysit.config import load_config

    cfg = load_config(_config(tmp_path, forms(SECRET)[0]), ["train.epochs=2"])
    saved = cfg.saved_dict()
    assert SECRET not in str(saved) and saved["search"]["storage"] == "postgresql://alice:***@db.example.org:5432/search"
    assert saved["redacted"] == {"search.storage": f"the secret is in {tmp_path / 'leak.toml'} (key search.storage); "
                                                   "not copied here"}
    env = load_config(_config(tmp_path, "${BABYSIT_LEAK_URL}", "env.toml")).saved_dict()
    assert env["search"]["storage"] == "${BABYSIT_LEAK_URL}" and "redacted" not in env  # a reference is no secret


def test_training_keeps_no_secret(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(_config(tmp_path, forms(SECRET)[0])), "--no-progress"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "leak"
    assert (run / "report.html").is_file()
    assert not leaks(files_text(run) + result.output, (SECRET,))
    assert "redacted" in (run / "config.toml").read_text()


def test_a_sqlite_search_keeps_no_secret_of_its_config(tmp_path: Path) -> None:
    # a config written for a PostgreSQL study, run here on SQLite: the URL in its [search] table goes nowhere
    config = _config(tmp_path, forms(ODD)[0])
    folder = tmp_path / "s"
    result = runner.invoke(app, ["-v", "search", str(config), "--dir", str(folder), "--storage",
                                 f"sqlite:///{folder}/study.db", "--no-progress"])
    assert result.exit_code == 0, result.output
    report = runner.invoke(app, ["report", str(folder)])
    status = runner.invoke(app, ["search", "status", str(folder)])
    assert report.exit_code == 0 and status.exit_code == 0
    assert not leaks(files_text(folder) + result.output + report.output + status.output, (ODD, ENCODED))


def test_a_postgres_search_keeps_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = require(SECRET_URL)
    assert SECRET in url
    query_form = url.replace(f":{SECRET}@", "@") + f"?password={SECRET}"
    # the URL from the environment (not the command line), then from the config file in its query form
    monkeypatch.setenv("BABYSIT_STORAGE", url)
    first, second = tmp_path / "a", tmp_path / "b"
    outputs = []
    for folder, config, extra in ((first, _config(tmp_path, "", "env.toml"), []),
                                  (second, _config(tmp_path, query_form, "file.toml"), ["--overwrite"])):
        if folder == second:
            monkeypatch.delenv("BABYSIT_STORAGE")
        result = runner.invoke(app, ["-v", "search", str(config), "--dir", str(folder), "--no-progress", *extra])
        assert result.exit_code == 0, result.output
        status = runner.invoke(app, ["search", "status", str(folder), "--storage", url])
        report = runner.invoke(app, ["report", str(folder)])
        assert status.exit_code == 0 and report.exit_code == 0, status.output + report.output
        outputs += [result.output, status.output, report.output]
    assert "babysit_secret:***@127.0.0.1" in (first / "study.json").read_text()
    assert not leaks(files_text(first, second) + "\n".join(outputs), (SECRET,))


@pytest.mark.parametrize("url", [u for u in forms(SECRET, host="127.0.0.1", port=54329) if "://" in u]
                         + [f"postgresql://babysit_secret:{ODD}@127.0.0.1:54329/babysit_secret",
                            f"postgresql://babysit_secret:{SECRET}@no-such-host.invalid/babysit_secret"])
def test_a_failing_connection_shows_no_secret(tmp_path: Path, url: str) -> None:
    require(SECRET_URL)
    config = _config(tmp_path, "")
    started = time.monotonic()
    result = runner.invoke(app, ["search", str(config), "--storage", url, "--dir", str(tmp_path / "s"),
                                 "--no-progress"], env={"COLUMNS": "300"})
    elapsed = time.monotonic() - started
    # wrong user / password, unknown host, unparseable: one line, exit 2, within 5 s, and no password
    assert result.exit_code == 2, result.output
    assert elapsed < 5, (elapsed, result.output)
    assert "retry" not in result.output  # none of these is worth a retry
    assert "error:" in result.output and "Traceback" not in result.output
    assert not leaks(result.output + files_text(tmp_path / "s") if (tmp_path / "s").exists() else result.output,
                     (SECRET, ODD))


def test_a_refused_connection_is_retried_visibly_then_fails(tmp_path: Path) -> None:
    url = f"postgresql://alice:{SECRET}@127.0.0.1:1/search"  # nothing listens on port 1
    started = time.monotonic()
    result = runner.invoke(app, ["search", str(_config(tmp_path, "")), "--storage", url, "--no-progress",
                                 "--dir", str(tmp_path / "s")], env={"COLUMNS": "300"})
    # a server that may be restarting: a few visible retries, then one clear line, and no password anywhere
    assert result.exit_code == 2 and time.monotonic() - started < 15, result.output
    assert "retry 1" in result.output and "no database server answers" in result.output
    assert not leaks(result.output, (SECRET,))
