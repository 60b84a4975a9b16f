"""Why an applied agent did not start, in the words ``validate --check-agents`` uses.

The registry reports a failed build as the exception's text; for a config that does
not match the agent's ``config_model`` that is a pydantic dump of several lines. Here
the failure is explained again by ``check_agent`` (one finding per bad field) and, when
the tree the live revision was applied from is still at hand, each finding is located
at its ``file:line:column`` there, exactly as ``validate --check-agents`` prints it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from devskyy.adapters.manifest_files import DEFAULT_MAX_BYTES, DiskManifestFiles
from devskyy.core.yaml_strict import Document, load_documents
from devskyy.errors import DevskyyError
from devskyy.model.manifests import Agent
from devskyy.model.problems import format_path
from devskyy.model.resources import ResourceSet
from devskyy.runtime.agent_check import check_agent


def _agent_documents(tree: Path) -> dict[str, Document]:
    """The Agent documents below ``tree`` by name (unreadable files are skipped)."""
    try:
        found = DiskManifestFiles().read_tree(str(tree), DEFAULT_MAX_BYTES)
    except (DevskyyError, OSError):
        return {}
    out: dict[str, Document] = {}
    for item in found:
        if item.data is None:
            continue
        for doc in load_documents(item.data, item.name).documents:
            data = doc.data
            meta = data.get("metadata") if isinstance(data, dict) else None
            name = meta.get("name") if isinstance(meta, dict) else None
            if isinstance(data, dict) and data.get("kind") == "Agent" and isinstance(name, str):
                out.setdefault(name, doc)
    return out


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else text


def explain_failures(
    failures: Mapping[str, str], live: ResourceSet, tree: Path | None
) -> dict[str, list[str]]:
    """For each agent that did not start, one line per reason.

    A reason ``check_agent`` finds is ``FILE:LINE:COL: PATH: MESSAGE`` when ``tree``
    holds the agent's manifest, else ``PATH: MESSAGE``; anything else (``initialize()``
    returned False, an error at construction) is the first line of the error.
    """
    documents: dict[str, Document] | None = None
    out: dict[str, list[str]] = {}
    for name in sorted(failures):
        manifest = live.get("Agent", name)
        findings = list(check_agent(manifest)) if isinstance(manifest, Agent) else []
        if not findings:
            out[name] = [_first_line(failures[name])]
            continue
        if documents is None:
            documents = _agent_documents(tree) if tree is not None and tree.is_dir() else {}
        doc = documents.get(name)
        if doc is None:
            out[name] = [f"{format_path(path)}: {message}" for path, message in findings]
        else:  # in file order, as validate prints them
            out[name] = [str(p) for p in sorted(doc.problem(*f) for f in findings)]
    return out
