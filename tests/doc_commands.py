"""The commands the README and docs/ tell a user to type, read from the pages themselves, so that
a test runs what the page says and the page cannot drift from the code."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bash_block(page: str, heading: str, index: int = 0) -> list[str]:
    """The non-empty lines of the `index`-th ```bash block under `heading` (a `#`-heading line's text)
    of `page` (a path from the repository root), up to the next heading."""
    text = (ROOT / page).read_text()
    marker = next(line for line in text.splitlines() if line.lstrip("#").strip() == heading)
    section = text.split(marker + "\n", 1)[1]
    section = "\n".join(
        _until_next_heading(section.splitlines(), level=len(marker) - len(marker.lstrip("#")))
    )
    blocks = [block.split("```", 1)[0] for block in section.split("```bash\n")[1:]]
    return [line for line in blocks[index].splitlines() if line.strip()]


def _until_next_heading(lines: list[str], level: int) -> list[str]:
    kept: list[str] = []
    fenced = False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        heading = not fenced and line.startswith("#")
        if heading and len(line) - len(line.lstrip("#")) <= level:
            break
        kept.append(line)
    return kept
