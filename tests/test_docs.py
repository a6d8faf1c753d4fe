"""The user docs: the generated reference is current, every public object has a docstring, the
links of docs/*.md and README.md resolve, and the quickstart's Python code runs as written."""

from __future__ import annotations

import functools
import importlib.util
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import subprocess_env

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GENERATOR = ROOT / "scripts" / "gen_reference.py"
QUICKSTART = DOCS / "quickstart.md"
#: A ```python block right after this comment is shown but not run (it needs TensorFlow or a service).
NOT_RUN_MARK = "<!-- not run by tests/test_docs.py"
#: Seconds the quickstart's code may take in its subprocess (local[2] Spark, one small fit).
QUICKSTART_TIMEOUT_S = 240

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```")


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_reference", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator():
    return _load_generator()


@pytest.fixture(scope="module")
def collected(generator):
    return generator.collect()


# ---------------------------------------------------------------------------------- reference
def test_reference_is_current(generator, collected):
    fresh = generator.render(collected)
    committed = (DOCS / "reference.md").read_text(encoding="utf-8") if (DOCS / "reference.md").exists() else ""
    assert committed == fresh, (
        "docs/reference.md differs from what the docstrings generate. "
        f"Run `{generator.REGENERATE}` and commit docs/reference.md."
    )


def test_reference_imports_every_public_module(collected):
    failed = {doc.name: doc.error for doc in collected if doc.error}
    assert not failed, f"Public modules that could not be imported for the reference: {failed}"


def test_reference_covers_every_exported_name(generator, collected):
    import importlib

    documented = {entry.qualname for doc in collected for entry in doc.entries}
    documented |= {f"{doc.name}.{name}" for doc in collected for name, _ in doc.aliases}
    for name in generator.PUBLIC_MODULES:
        module = importlib.import_module(name)
        for export in getattr(module, "__all__", []):
            obj = getattr(module, export)
            if isinstance(obj, type) or callable(obj):
                assert f"{name}.{export}" in documented, f"{name}.{export} is exported but not in the reference"


def test_every_public_object_has_a_docstring(generator, collected):
    missing = generator.missing_docstrings(collected)
    assert not missing, (
        f"{len(missing)} public class(es), function(s), method(s) or propert(ies) have no docstring; "
        "add one to each, then run `" + generator.REGENERATE + "`:\n  " + "\n  ".join(missing)
    )


def test_generator_reports_an_unimportable_module(generator):
    docs = generator.collect(("zoo.errors", "zoo.no_such_module_for_the_test"))
    text = generator.render(docs)
    assert "zoo.no_such_module_for_the_test` could not be imported" in text
    assert "ModuleNotFoundError" in text
    assert "### zoo.errors.WorkerError" in text


def test_generator_finds_a_missing_docstring(generator, tmp_path, monkeypatch):
    (tmp_path / "zoo_docs_probe.py").write_text(textwrap.dedent('''
        """A probe module."""
        __all__ = ["Documented", "bare"]

        class Documented:
            """Has a docstring."""

            def method(self):
                pass

            def _private(self):
                pass

        def bare(x):
            return x
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    docs = generator.collect(("zoo_docs_probe",))
    assert generator.missing_docstrings(docs) == ["zoo_docs_probe.Documented.method", "zoo_docs_probe.bare"]


# ---------------------------------------------------------------------------------- links
def _markdown_files() -> list[pathlib.Path]:
    return sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]


def _outside_code(text: str) -> str:
    """The text with fenced code blocks and code spans blanked out (links there are not links)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line.strip()):
            fenced = not fenced
            lines.append("")
            continue
        lines.append("" if fenced else re.sub(r"`[^`]*`", "", line))
    return "\n".join(lines)


@functools.lru_cache(maxsize=None)
def _anchors(path: pathlib.Path, generator) -> frozenset[str]:
    """The heading anchors of a Markdown file, as GitHub makes them (read once per path)."""
    anchors, counts = set(), {}
    for line in _outside_code(path.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"^#{1,6}\s+(.*)$", line)
        if match:
            base = generator.slug(match.group(1).replace("`", ""))
            n = counts.get(base, 0)
            counts[base] = n + 1
            anchors.add(base if n == 0 else f"{base}-{n}")
    return frozenset(anchors)


def test_relative_links_resolve(generator):
    broken = []
    for path in _markdown_files():
        for target in _LINK.findall(_outside_code(path.read_text(encoding="utf-8"))):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            if not resolved.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target} (no file {resolved})")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved, generator):
                broken.append(f"{path.relative_to(ROOT)}: {target} (no heading #{anchor} in {resolved.name})")
    assert not broken, "Broken relative links:\n  " + "\n  ".join(broken)


# ---------------------------------------------------------------------------------- quickstart
def python_blocks(markdown: str) -> list[str]:
    """The ```python blocks of a Markdown text, without those right after the not-run mark."""
    blocks, current, previous = [], None, ""
    skip = False
    for line in markdown.splitlines():
        stripped = line.strip()
        if current is None:
            if stripped.startswith("```python"):
                current, skip = [], previous.startswith(NOT_RUN_MARK)
            elif stripped:
                previous = stripped
        elif stripped.startswith("```"):
            if not skip:
                blocks.append("\n".join(current))
            current, previous = None, ""
        else:
            current.append(line)
    return blocks


def test_python_blocks_honours_the_not_run_mark():
    text = "```python\na = 1\n```\n\n" + NOT_RUN_MARK + " -->\n```python\nb = 2\n```\n```bash\nc\n```\n"
    assert python_blocks(text) == ["a = 1"]


@pytest.mark.slow
def test_quickstart_snippets_run(tmp_path):
    blocks = python_blocks(QUICKSTART.read_text(encoding="utf-8"))
    assert len(blocks) >= 5, "expected the quickstart's Python blocks"
    script = tmp_path / "quickstart_snippets.py"
    script.write_text("\n\n".join(f"# ---- block {i}\n{b}" for i, b in enumerate(blocks)) + "\nprint('SNIPPETS OK')\n")
    env = subprocess_env(TMPDIR=str(tmp_path))  # the quickstart's tempfile.mkdtemp() lands here and is cleaned up
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=QUICKSTART_TIMEOUT_S)
    assert done.returncode == 0 and "SNIPPETS OK" in done.stdout, (
        f"The Python blocks of docs/quickstart.md failed (run as {script}):\n"
        f"{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    )
    assert "test accuracy" in done.stdout
