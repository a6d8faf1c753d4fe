#!/usr/bin/env python3
"""Generate docs/reference.md from the docstrings of Zoo's public API.

    .venv/bin/python scripts/gen_reference.py            # write docs/reference.md
    .venv/bin/python scripts/gen_reference.py --check    # exit 1 when docs/reference.md is stale
    .venv/bin/python scripts/gen_reference.py --missing  # list public objects without a docstring

The public API is every name of ``PUBLIC_MODULES`` that the module exports in ``__all__`` or,
for a module without ``__all__``, every class and function it defines whose name does not start
with ``_``. For each class the reference shows its constructor signature, its docstring, its
Spark ML Params (if any) and its public methods and properties, including those a class takes
from Zoo's private mixins (``HasBatchSize.setBatchSize`` appears under ``NNEstimator``). An
object exported by several public modules is documented once, under the module that defines it
(or the first that exports it), and linked from the others.

A module that cannot be imported (an optional dependency missing) gets a note in its section
instead of its API, so the generator never fails half-way.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import os
import re
import sys
from dataclasses import dataclass, field

_CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _CHECKOUT not in sys.path:
    sys.path.insert(0, _CHECKOUT)

#: The public modules, in the order the reference presents them.
PUBLIC_MODULES = ("zoo", "zoo.engine", "zoo.nnframes", "zoo.tfpark", "zoo.inference", "zoo.serving", "zoo.flink",
                  "zoo.storage", "zoo.errors", "zoo.dtypes", "zoo.packaging", "zoo.context", "zoo.cluster",
                  "zoo.network", "zoo.devcluster",
                  "zoo.orca", "zoo.orca.learn.pytorch", "zoo.orca.learn.tf2", "zoo.registry", "zoo.registry.flavor",
                  "zoo.monitoring", "zoo.nnframes.streaming", "zoo.streaming")
#: Where the reference is written, relative to the checkout.
DEFAULT_OUTPUT = os.path.join("docs", "reference.md")
#: Google-style docstring sections rendered as bullet lists of ``name: text`` entries.
LIST_SECTIONS = ("Args", "Arguments", "Attributes", "Raises", "Params")
#: Google-style docstring sections rendered as plain text under a bold title.
TEXT_SECTIONS = ("Returns", "Yields", "Note", "Notes")
#: The command that regenerates the reference (shown in its header and in test failures).
REGENERATE = ".venv/bin/python scripts/gen_reference.py"

_ROLE = re.compile(r":(?:class|meth|func|attr|mod|obj|data|exc):`~?([^`]+)`")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_QUOTED_ANNOTATION = re.compile(r"""(: |-> )"?'([^']*)'"?""")
_SECTION = re.compile(r"^([A-Z][A-Za-z ]*):\s*$")


@dataclass
class Member:
    """A public method or property of a documented class."""

    name: str
    kind: str  # "method", "classmethod", "staticmethod" or "property"
    signature: str
    doc: str
    accessor: bool = False  # set<Param>/get<Param>: shown in the Params table, not on its own
    defined_in: str = ""  # module.Class that defines it


@dataclass
class Entry:
    """One documented class or function.

    Attributes:
        qualname: where the reference documents it, e.g. ``zoo.nnframes.NNEstimator``.
        obj: the class or function.
        kind: ``"class"`` or ``"function"``.
        signature: the call signature as text.
        doc: its docstring, cleaned ("" when it has none).
        bases: public base classes, as Markdown (linked when documented here).
        params: (name, doc) of each Spark ML Param of a class.
        members: public methods and properties of a class.
    """

    qualname: str
    obj: object
    kind: str
    signature: str
    doc: str
    bases: list[str] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)


@dataclass
class ModuleDoc:
    """One public module: its docstring, its entries, aliases to entries elsewhere, or why it failed."""

    name: str
    doc: str = ""
    entries: list[Entry] = field(default_factory=list)
    aliases: list[tuple[str, str]] = field(default_factory=list)  # (exported name, canonical qualname)
    error: str | None = None


# ---------------------------------------------------------------------------------- collection
def public_names(module) -> list[str]:
    """The public classes and functions of `module` (``__all__``, else defined there and not ``_``-prefixed)."""
    exported = getattr(module, "__all__", None)
    if exported is not None:
        return [name for name in exported if inspect.isclass(getattr(module, name, None))
                or inspect.isfunction(getattr(module, name, None))]
    names = []
    for name, obj in vars(module).items():
        if name.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if getattr(obj, "__module__", None) == module.__name__:
            names.append(name)
    return sorted(names, key=lambda n: _source_line(getattr(module, n)))


def _source_line(obj) -> int:
    try:
        return inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return 0


def _clean(text: str | None) -> str:
    return inspect.cleandoc(text).strip() if text else ""


def own_doc(obj) -> str:
    """The docstring `obj` itself declares ("" when it has none; dataclasses' generated ones don't count)."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and doc and doc.startswith(f"{obj.__name__}("):
        return ""
    return _clean(doc)


def signature_text(obj, drop_first: bool = False) -> str:
    """``(a, b=1, *, c=None)``, with memory addresses removed so the output is reproducible."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    if drop_first:
        params = list(sig.parameters.values())[1:]
        sig = sig.replace(parameters=params)
    # Postponed annotations arrive as strings: show them as written in the source, unquoted.
    return _QUOTED_ANNOTATION.sub(r"\1\2", _ADDRESS.sub("", str(sig)))


def _package(obj) -> str:
    return (getattr(obj, "__module__", None) or "").split(".")[0]


def class_members(cls, documented: set[type], packages: set[str] = frozenset({"zoo"}),
                  params: list[tuple[str, str]] | None = None) -> list[Member]:
    """Public methods and properties of `cls` defined in `cls` or in bases from `packages` that
    the reference does not document on their own (private mixins). A member that a documented
    base class also has is left out unless `cls` redefines it with its own docstring: the base
    documents it. `params` is `class_params(cls)` when the caller already has it."""
    members, seen = [], set()
    param_names = {name for name, _ in (class_params(cls) if params is None else params)}
    mro = inspect.getmro(cls)
    # Names a documented public base class already has: documented under that class.
    on_public_base = {name for base in mro[1:] if base in documented for name in dir(base)}
    for owner in mro:
        if _package(owner) not in packages or (owner is not cls and owner in documented):
            seen.update(vars(owner))
            continue
        for name, raw in vars(owner).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if name in on_public_base and (owner is not cls or not _clean(getattr(raw, "__doc__", None))):
                continue
            if isinstance(raw, property):
                kind, func = "property", raw.fget
            elif isinstance(raw, classmethod):
                kind, func = "classmethod", raw.__func__
            elif isinstance(raw, staticmethod):
                kind, func = "staticmethod", raw.__func__
            elif inspect.isfunction(raw):
                kind, func = "method", raw
            else:
                continue
            doc = _clean(func.__doc__) if func is not None else ""
            if not doc:
                doc = _inherited_doc(cls, name)
            signature = "" if kind == "property" else signature_text(func, drop_first=kind in ("method", "classmethod"))
            param = name[3:4].lower() + name[4:]
            accessor = name[:3] in ("set", "get") and param in param_names
            members.append(Member(name, kind, signature, doc, accessor, f"{owner.__module__}.{owner.__qualname__}"))
    return members


def _inherited_doc(cls, name: str) -> str:
    """The docstring of `name` in the nearest base class after the definer that documents it ("" if none)."""
    found_definer = False
    for base in inspect.getmro(cls):
        raw = vars(base).get(name)
        if raw is None:
            continue
        if not found_definer:
            found_definer = True
            continue
        func = raw.fget if isinstance(raw, property) else getattr(raw, "__func__", raw)
        doc = _clean(getattr(func, "__doc__", None))
        if doc:
            return doc
    return ""


def class_params(cls) -> list[tuple[str, str]]:
    """(name, doc) of the Spark ML Params a class declares (its own and its mixins')."""
    try:
        from pyspark.ml.param import Param
    except ImportError:
        return []
    params = []
    for name in dir(cls):
        value = getattr(cls, name, None)
        if isinstance(value, Param):
            params.append((value.name, value.doc))
    return sorted(params)


def _base_names(cls, home: dict[int, str]) -> list[str]:
    """The public direct bases of `cls` as Markdown: a link when the reference documents the base."""
    names = []
    for base in cls.__bases__:
        if base is object or base.__name__.startswith("_"):
            continue
        if id(base) in home:
            names.append(f"[`{home[id(base)]}`](#{slug(home[id(base)])})")
        else:
            module = base.__module__
            names.append(f"`{base.__name__}`" if module == "builtins" else f"`{module}.{base.__name__}`")
    return names


def collect(modules=PUBLIC_MODULES) -> list[ModuleDoc]:
    """Import the public modules and gather their entries; never raises for a failed import."""
    loaded: dict[str, object] = {}
    docs: list[ModuleDoc] = []
    for name in modules:
        try:
            loaded[name] = importlib.import_module(name)
            docs.append(ModuleDoc(name, _clean(loaded[name].__doc__)))
        except Exception as exc:  # noqa: BLE001 - any import failure becomes a note in the reference
            docs.append(ModuleDoc(name, error=f"{type(exc).__name__}: {exc}"))
    # Canonical home of each object: the public module that defines it, else the first exporting it.
    exported = {name: [(n, getattr(module, n)) for n in public_names(module)] for name, module in loaded.items()}
    home: dict[int, str] = {}
    for module_name, items in exported.items():
        for export_name, obj in items:
            defined_in = exported.get(obj.__module__, [])
            if any(other is obj for _, other in defined_in) and obj.__module__ != module_name:
                continue  # documented where it is defined
            home.setdefault(id(obj), f"{module_name}.{export_name}")
    documented = {obj for items in exported.values() for _, obj in items if inspect.isclass(obj)}
    packages = {name.split(".")[0] for name in loaded}
    for doc in docs:
        for export_name, obj in exported.get(doc.name, []):
            qualname = f"{doc.name}.{export_name}"
            canonical = home[id(obj)]
            if canonical != qualname:
                doc.aliases.append((export_name, canonical))
                continue
            if inspect.isclass(obj):
                params = class_params(obj)
                doc.entries.append(Entry(qualname, obj, "class", signature_text(obj), own_doc(obj),
                                         _base_names(obj, home), params,
                                         class_members(obj, documented, packages, params)))
            else:
                doc.entries.append(Entry(qualname, obj, "function", signature_text(obj), own_doc(obj)))
    return docs


def missing_docstrings(docs: list[ModuleDoc]) -> list[str]:
    """Qualified names of public classes, functions, methods and properties without a docstring."""
    missing = []
    for module in docs:
        for entry in module.entries:
            if not entry.doc:
                missing.append(entry.qualname)
            for member in entry.members:
                if not member.doc:
                    where = "" if member.defined_in == f"{entry.obj.__module__}.{entry.obj.__qualname__}" \
                        else f" (defined in {member.defined_in})"
                    missing.append(f"{entry.qualname}.{member.name}{where}")
    return missing


# ---------------------------------------------------------------------------------- rendering
def slug(text: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def _escape(line: str) -> str:
    """Escape ``<`` outside code spans (Markdown would read ``<path>`` as an HTML tag)."""
    parts = re.split(r"(`+[^`]*`+)", line)
    return "".join(p if p.startswith("`") else p.replace("<", "&lt;") for p in parts)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def render_doc(doc: str) -> list[str]:
    """A cleaned Google-style docstring as Markdown lines."""
    doc = _ROLE.sub(r"`\1`", doc)
    lines = doc.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        section = _SECTION.match(line)
        block_end = i + 1
        while block_end < len(lines) and (not lines[block_end].strip() or _indent(lines[block_end]) > _indent(line)):
            block_end += 1
        block = lines[i + 1:block_end]
        while block and not block[-1].strip():
            block.pop()
        if section and section.group(1) in LIST_SECTIONS and block:
            out += ["", f"**{section.group(1)}:**", ""] + _render_list(block) + [""]
            i = block_end
        elif section and section.group(1) in TEXT_SECTIONS and block:
            text = " ".join(b.strip() for b in block if b.strip())
            out += ["", f"**{section.group(1)}:** {_escape(text)}", ""]
            i = block_end
        elif line.rstrip().endswith(":") and block and line.strip():
            while not block[0].strip():
                block.pop(0)
            base = min(_indent(b) for b in block if b.strip())
            title = line.rstrip()[:-1] if line.rstrip().endswith("::") else line.rstrip()
            out += [_escape(title), "", "```"] + [b[base:] for b in block] + ["```", ""]
            i = block_end
        else:
            out.append(_escape(line))
            i += 1
    # Collapse runs of blank lines.
    collapsed: list[str] = []
    for line in out:
        if line.strip() or (collapsed and collapsed[-1].strip()):
            collapsed.append(line.rstrip())
    while collapsed and not collapsed[-1]:
        collapsed.pop()
    return collapsed


def _render_list(block: list[str]) -> list[str]:
    """``name: text`` entries (continuation lines indented deeper) as a bullet list."""
    base = min(_indent(b) for b in block if b.strip())
    items: list[str] = []
    for line in block:
        if not line.strip():
            continue
        if _indent(line) == base:
            name, sep, text = line.strip().partition(":")
            # "x: ...", "**kwargs: ..." and "a, b: ..." name parameters; other lines are prose.
            is_name = sep and all(part.strip().lstrip("*").replace(".", "_").isidentifier()
                                  for part in name.split(","))
            items.append(f"- `{name.strip()}`: {text.strip()}" if is_name else f"- {line.strip()}")
        elif items:
            items[-1] += " " + line.strip()
    return [_escape(item) for item in items]


def render(docs: list[ModuleDoc]) -> str:
    """The whole reference as Markdown."""
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings of Zoo's public modules by `scripts/gen_reference.py`; do not edit",
        f"it by hand. After changing a public docstring or signature, run `{REGENERATE}`",
        "(`tests/test_docs.py` fails while this file is stale). Start with the [quickstart](quickstart.md);",
        "[concepts](concepts.md) explains how a fit runs across executors.",
        "",
        "## Contents",
        "",
    ]
    for module in docs:
        lines.append(f"- [{module.name}](#{slug(module.name)})")
        for entry in module.entries:
            lines.append(f"  - [{entry.qualname.rsplit('.', 1)[1]}](#{slug(entry.qualname)})")
    for module in docs:
        lines += ["", f"## {module.name}", ""]
        if module.error is not None:
            lines += [f"> `{module.name}` could not be imported while this reference was generated "
                      f"({_escape(module.error)}); install its optional dependencies and run `{REGENERATE}` again."]
            continue
        lines += render_doc(module.doc)
        if module.aliases:
            lines += ["", "Also exported here: " + ", ".join(
                f"[`{name}`](#{slug(canonical)}) (`{canonical}`)" for name, canonical in module.aliases) + "."]
        for entry in module.entries:
            lines += ["", f"### {entry.qualname}", ""]
            prefix = "class " if entry.kind == "class" else ""
            lines += ["```python", f"{prefix}{entry.qualname}{entry.signature}", "```", ""]
            if entry.bases:
                lines += ["Bases: " + ", ".join(entry.bases), ""]
            lines += render_doc(entry.doc) if entry.doc else ["*No docstring.*"]
            if entry.params:
                lines += ["", "**Params** (Spark ML Params: pass them as keywords, or use the setter and getter):",
                          "", "| Param | Meaning | Setter, getter |", "|---|---|---|"]
                for name, doc in entry.params:
                    title = name[0].upper() + name[1:]
                    accessors = [f"`{a}`" for a in (f"set{title}", f"get{title}") if hasattr(entry.obj, a)]
                    lines.append(f"| `{name}` | {_escape(doc).replace('|', '&#124;')} | {', '.join(accessors)} |")
            for member in entry.members:
                if member.accessor:
                    continue
                label = {"property": "property ", "classmethod": "classmethod ", "staticmethod": "staticmethod "}.get(
                    member.kind, "")
                lines += ["", f"#### {label}`{entry.qualname.rsplit('.', 1)[1]}.{member.name}{member.signature}`", ""]
                lines += render_doc(member.doc) if member.doc else ["*No docstring.*"]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write, check (``--check``) or list what lacks a docstring (``--missing``)."""
    parser = argparse.ArgumentParser(description="Generate docs/reference.md from Zoo's docstrings.")
    parser.add_argument("--output", default=os.path.join(_CHECKOUT, DEFAULT_OUTPUT))
    parser.add_argument("--check", action="store_true", help="exit 1 when the file differs from fresh output")
    parser.add_argument("--missing", action="store_true", help="list public objects without a docstring")
    args = parser.parse_args(argv)
    docs = collect()
    if args.missing:
        missing = missing_docstrings(docs)
        print("\n".join(missing) if missing else "Every public class, function, method and property has a docstring.")
        return 1 if missing else 0
    text = render(docs)
    if args.check:
        current = open(args.output, encoding="utf-8").read() if os.path.exists(args.output) else ""
        if current != text:
            print(f"{args.output} is stale: run {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(text)
    failed = [d.name for d in docs if d.error]
    print(f"Wrote {args.output}" + (f" (could not import: {', '.join(failed)})" if failed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
