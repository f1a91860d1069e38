"""The documentation: the README fits a first read and its links resolve; the site builds in strict mode."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_is_short_and_its_commands_are_the_ones_ci_runs():
    text = README.read_text()
    assert len(text.split()) <= 1500
    assert 'pip install -e ".[bench]" && qbench run --quick' in text
    assert 'pip install -e ".[test]" && pytest' in text


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs", reason='mkdocs not installed (the docs extra: pip install -e ".[docs]")')
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "", "HOME": str(out)},
        timeout=600,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return out


def test_the_docs_build_in_strict_mode_with_the_api_from_the_docstrings(site):
    api = (site / "api" / "index.html").read_text()
    for name in ("quantize", "dequantize", "calibrate", "matmul_integer", "pack_weights", "QuantParams"):
        assert 'id="qbench.' in api and re.search(rf'id="qbench\.[\w.]*\.{name}"', api), name
    assert (site / "results" / "index.html").exists() and (site / "getting-started" / "index.html").exists()


def test_every_readme_link_resolves(site):
    for target in LINK.findall(README.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        assert (ROOT / path).exists(), target
        if anchor:
            page = site / Path(path).relative_to("docs").with_suffix("") / "index.html"
            assert f'id="{anchor}"' in page.read_text(), target


def test_strict_mode_fails_on_a_broken_link(tmp_path):
    """The build this suite relies on does fail: a copy of the docs with one link to nowhere."""
    pytest.importorskip("mkdocs", reason='mkdocs not installed (the docs extra: pip install -e ".[docs]")')
    docs = tmp_path / "docs"
    subprocess.run(["cp", "-r", str(ROOT / "docs"), str(docs)], check=True)
    (docs / "index.md").write_text((docs / "index.md").read_text() + "\n[lost](nowhere.md)\n")
    config = (ROOT / "mkdocs.yml").read_text().replace("paths: [.]", f"paths: [{ROOT}]")
    (tmp_path / "mkdocs.yml").write_text(config)
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "", "HOME": str(tmp_path)},
        timeout=600,
    )
    assert build.returncode != 0 and "nowhere.md" in build.stdout + build.stderr
