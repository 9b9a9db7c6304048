"""Relative links and images in README.md and docs/ point at files of the repository."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
#: Folders written by docs/build_results.py and docs/build_gallery.py; links into them are checked
#: once they have been generated.
GENERATED = [REPO / "docs" / "results", REPO / "docs" / "gallery"]


def relative_links(page: Path):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks hold no links
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        yield target.split("#")[0]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    missing = []
    for target in relative_links(page):
        path = (page.parent / target).resolve()
        generated = next((g for g in GENERATED if path.is_relative_to(g)), None)
        if generated is not None and not generated.exists():
            continue
        if not path.exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(REPO)} links to missing files: {missing}"


def test_docs_do_not_send_users_to_planning_notes():
    for page in PAGES:
        assert "shared/docs" not in page.read_text(), f"{page.relative_to(REPO)} refers to ../shared/docs"
