"""docs/lecture.md keeps pointing at code and tests that exist, and the repository stands alone."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LECTURE = ROOT / "docs" / "lecture.md"


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_path_and_test_cited_in_the_lecture_map_exists() -> None:
    text = LECTURE.read_text(encoding="utf-8")
    paths = set(re.findall(r"`((?:src|tests|bench|examples|docs)/[\w/.\-]+)", text))
    assert len(paths) > 40  # the map cites the code of every lecture item
    missing = sorted(p for p in paths if not (ROOT / p.split("::")[0]).exists())
    assert missing == []
    cited = re.findall(r"(tests/[\w/.\-]+\.py)::(test_\w+)", text)
    assert len(cited) > 50
    unknown = sorted(f"{f}::{name}" for f, name in cited if name not in _test_names(ROOT / f))
    assert unknown == []


def test_every_lecture_item_is_mapped() -> None:
    text = LECTURE.read_text(encoding="utf-8")
    counts = {"G": 10, "S": 3, "B": 6, "U": 4, "A": 3, "P": 3, "H": 7, "E": 1}
    items = [f"{letter}{i}" for letter, n in counts.items() for i in range(1, n + 1)]
    assert [i for i in items if not re.search(rf"### {i}\b", text)] == []


def test_code_and_docs_refer_only_to_files_inside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|shared/(LECTURE|DESIGN|STYLE)\.md")
    files = [*ROOT.glob("src/**/*.py"), *ROOT.glob("docs/*.md"), *ROOT.glob("*.md"), *ROOT.glob("bench/*.py"),
             *ROOT.glob("examples/*")]
    assert [str(f.relative_to(ROOT)) for f in files if outside.search(f.read_text(encoding="utf-8"))] == []
