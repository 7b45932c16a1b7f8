"""tap-vobiz as users get it: a wheel from PyPI, added to their Meltano project from its Hub definition."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import yaml

from scripts import plugin_definition
from tests.doc_commands import bash_block
from tests.tap_runner import emulator_config

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `uv build` makes of this checkout."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [str(BIN / "uv"), "build", "--wheel", "-o", str(out), str(ROOT)], check=True, capture_output=True
    )
    (built,) = out.glob("tap_vobiz-*.whl")
    return built


def test_the_wheel_holds_the_tap_alone_and_the_metadata_pypi_users_expect(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = Parser().parsestr(archive.read("tap_vobiz-0.1.0.dist-info/METADATA").decode())
        entry_points = archive.read("tap_vobiz-0.1.0.dist-info/entry_points.txt").decode()

    modules = {f"tap_vobiz/{path.name}" for path in (ROOT / "tap_vobiz").glob("*.py")}
    dist_info = {
        f"tap_vobiz-0.1.0.dist-info/{name}" for name in ("METADATA", "WHEEL", "RECORD", "entry_points.txt")
    }
    assert names == modules | {"tap_vobiz/py.typed", "tap_vobiz-0.1.0.dist-info/licenses/LICENSE"} | dist_info
    assert "tap-vobiz = tap_vobiz.tap:TapVobiz.cli" in entry_points
    assert "vobiz-webhooks = tap_vobiz.webhooks_cli:main" in entry_points

    assert metadata["Name"] == "tap-vobiz"
    assert metadata["Summary"].startswith("Singer tap for a Vobiz WhatsApp account")
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["License-File"] == "LICENSE"
    assert metadata["Requires-Python"] == ">=3.10"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().startswith("# tap-vobiz")
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL"))
    assert set(urls) == {"Homepage", "Documentation", "Repository", "Issues", "Vobiz API"}
    classifiers = metadata.get_all("Classifier")
    assert [c for c in classifiers if c.startswith("Programming Language :: Python :: 3.")] == [
        f"Programming Language :: Python :: 3.{minor}" for minor in (10, 11, 12, 13)
    ]
    assert "Development Status :: 4 - Beta" in classifiers
    # What the tap needs to run, and nothing of the pipeline or the tests; the receiver's server
    # only with the `webhooks` extra.
    assert sorted(metadata.get_all("Requires-Dist")) == [
        "fsspec>=2024.2",
        "httptools>=0.6; extra == 'webhooks'",
        "requests>=2.32",
        "singer-sdk[msgspec]<0.55,>=0.54.2",
        "typing-extensions>=4.5",
        "uvicorn>=0.30; extra == 'webhooks'",
        "uvloop>=0.19; (sys_platform != 'win32') and extra == 'webhooks'",
    ]
    assert metadata.get_all("Provides-Extra") == ["webhooks"]


def test_the_wheel_installed_with_pip_into_a_clean_venv_runs_the_tap(wheel, tmp_path, start_emulator):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # --no-compile: no byte-compiling of every dependency at install (measured 23-24 s -> 11-16 s);
    # Python compiles those the tap imports when it runs.
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    pip.append(str(wheel))
    subprocess.run(pip, check=True, capture_output=True)
    tap = str(venv / "bin" / "tap-vobiz")

    about = json.loads(
        subprocess.run([tap, "--about", "--format=json"], capture_output=True, check=True).stdout
    )
    emulator = start_emulator(5, 100, account={"contacts": 40})
    config = tmp_path / "config.json"
    config.write_text(json.dumps(emulator_config(emulator)))
    synced = subprocess.run([tap, "--config", str(config)], capture_output=True, text=True, timeout=120)

    assert about["name"] == "tap-vobiz"
    assert about["version"] == "0.1.0"
    assert synced.returncode == 0, synced.stderr[-2000:]
    records = [json.loads(line) for line in synced.stdout.splitlines() if '"type":"RECORD"' in line]
    streams = {record["stream"] for record in records}
    assert len(streams) == 9
    assert sum(record["stream"] == "messages" for record in records) == 100
    assert sum(record["stream"] == "contacts" for record in records) == 40
    # Without the `webhooks` extra, the receiver says how to get it.
    serve = subprocess.run(
        [str(venv / "bin" / "vobiz-webhooks"), "serve", "--capture", str(tmp_path / "capture")],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "VOBIZ_WEBHOOK_SECRET": "a-secret"},
        timeout=60,
    )
    assert serve.returncode == 2
    assert (
        serve.stderr
        == "vobiz-webhooks: the receiver needs the webhooks extra: pip install 'tap-vobiz[webhooks]'\n"
    )


def test_the_plugin_definition_is_what_tap_vobiz_about_says():
    assert (ROOT / "tap-vobiz.yml").read_text() == plugin_definition.render(plugin_definition.about())


def test_the_readmes_meltano_section_as_a_user_types_it_in_a_new_project(tmp_path, start_emulator):
    """The README's "Add tap-vobiz to your Meltano project", line by line, in a `meltano init` project.

    Only the two lines that reach Meltano Hub (adding target-postgres, then `meltano run`) are not
    run: the Hub cannot be reached from here. The loader and `meltano run` are `make demo`'s and
    tests/test_meltano.py's; here the tap's own output is checked (`meltano invoke`).
    """
    lines = bash_block("README.md", "Add tap-vobiz to your Meltano project")
    hub_lines = [line for line in lines if "target-postgres" in line]
    assert [line.split("#")[0].strip() for line in hub_lines] == [
        "meltano add --plugin-type loader target-postgres",
        "meltano run tap-vobiz target-postgres",
    ]
    (repo_line,) = [line for line in lines if line.startswith("TAP_VOBIZ_REPO=")]
    typed = [line for line in lines if line not in hub_lines and line is not repo_line]

    subprocess.run(
        [str(BIN / "meltano"), "init", "my-project", "--no_usage_stats"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    project = tmp_path / "my-project"
    emulator = start_emulator(5, 100)
    script = "\n".join(["set -euo pipefail", f"TAP_VOBIZ_REPO={ROOT}", *typed])
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "VOBIZ_AUTH_TOKEN": emulator.state.auth_token,
        # Where the README's user reaches api.vobiz.ai, the test reaches its emulator.
        "TAP_VOBIZ_API_URL": emulator.api_url,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    script = script.replace("MA_XXXXXXXX", emulator.state.auth_id)
    typed_run = subprocess.run(
        ["bash", "-c", script], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )
    assert typed_run.returncode == 0, typed_run.stderr[-3000:]

    project_file = project / "meltano.yml"
    (extractor,) = yaml.safe_load(project_file.read_text())["plugins"]["extractors"]
    assert extractor["pip_url"] == str(ROOT)
    # The sensitive setting went to .env, not into the project file that gets committed.
    assert (project / ".env").read_text().strip() == f"TAP_VOBIZ_AUTH_TOKEN='{emulator.state.auth_token}'"
    assert emulator.state.auth_token not in project_file.read_text()
    assert extractor["config"] == {"auth_id": emulator.state.auth_id, "start_date": "2026-01-01T00:00:00Z"}
    catalog = json.loads((project / "catalog.json").read_text())
    assert sorted(stream["tap_stream_id"] for stream in catalog["streams"]) == [
        "call_logs",
        "campaign_recipients",
        "campaigns",
        "canned_responses",
        "channels",
        "contacts",
        "conversations",
        "messages",
        "templates",
    ]
    synced = subprocess.run(
        [str(BIN / "meltano"), "invoke", "tap-vobiz"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert synced.returncode == 0, synced.stderr[-3000:]
    records = [json.loads(line) for line in synced.stdout.splitlines() if '"type":"RECORD"' in line]
    served = {
        message["id"]
        for conversation in emulator.state.dataset.conversations
        for message in conversation.messages
        if message["created_at"] >= "2026-01-01"
    }
    assert len(served) == 100
    assert {record["record"]["id"] for record in records if record["stream"] == "messages"} == served
