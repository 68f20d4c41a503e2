"""The documentation site: it builds in strict mode, its CLI reference lists every option the parsers
define, its engine page renders in a real browser.

The build hook (``docs/hooks/generate.py``) is a file MkDocs loads by path; the tests load it the
same way.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"


def _hook():
    spec = importlib.util.spec_from_file_location("adderhw_docs_hook", ROOT / "docs" / "hooks" / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _env() -> dict:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site built once with ``mkdocs build --strict`` (warnings, broken links, missing pages fail)."""
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


# ------------------------------------------------------------------------------------------ CLI reference

def _walk(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """Every subcommand and the names of its arguments (option strings, or the dest of a positional)."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = [s for a in sub._actions if not isinstance(a, argparse._HelpAction)
                               for s in (a.option_strings or [a.metavar or a.dest])]
    return found


def test_cli_reference_lists_every_subcommand_and_option():
    page = _hook().cli_page()
    sections = dict(re.findall(r"^## `adderhw (\S+)` \{#\S+\}\n(.*?)(?=^## |\Z)", page, re.M | re.S))
    walked = _walk(build_parser())
    assert sorted(sections) == sorted(walked)
    for name, args in walked.items():
        rows = [line for line in sections[name].splitlines() if line.startswith("| `")]
        listed = [s for row in rows for s in re.findall(r"`([^`]+)`", row.split(" | ")[0])]
        assert listed == args, name


@pytest.mark.slow
def test_site_builds_strict_with_every_page(site):
    for page in ("index.html", "getting-started.html", "concepts/engine.html", "reference/cli.html",
                 "reference/interfaces.html", "results/demo.html", "tutorials/own-architecture.html"):
        assert (site / page).is_file(), page
    cli = (site / "reference" / "cli.html").read_text()
    for name in _walk(build_parser()):
        assert f'id="{name}"' in cli, name
    hook = _hook()
    for pkg in hook.PACKAGES:
        html = (site / "reference" / "api" / f"{pkg}.html").read_text()
        for module in hook.modules(pkg):
            assert f'id="{module}"' in html, module
    engine = (site / "concepts" / "engine.html").read_text()
    assert "engine.svg" in engine
    assert f"<summary>{hook.DOCSTRING_HEADINGS['cycle-contract']}</summary>" in engine  # the docstring's section


def test_cycle_contract_lives_in_one_docstring():
    hook = _hook()
    module = hook.module_with_heading(hook.DOCSTRING_HEADINGS["cycle-contract"])
    assert module.startswith("hwsim.")


# ------------------------------------------------------------------------------------------ a real browser

@pytest.mark.slow
def test_engine_page_renders_in_chromium(site, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (optional, see README)")
    shot = tmp_path / "engine.png"
    page = site / "concepts" / "engine.html"
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert "<title>The network engine - adderhw</title>" in dom
    # non-blank: a rendered page has many colours (text, the diagram, the header), a blank one one
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3].reshape(-1, 3)
    assert len({tuple(p) for p in pixels[::7]}) > 50


# ------------------------------------------------------------------------------------------ the README

def test_readme_is_short_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text) <= 10_000
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert links
    for link in links:
        assert (ROOT / link).is_file(), link
