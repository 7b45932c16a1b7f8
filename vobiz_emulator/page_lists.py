"""Page-numbered lists as the API serves them: offsets into live rows, which shift when rows come and go.

No sort order is documented; the emulator lists oldest first (`created_at`, then `id`), so
a row created while a client pages lands on the last page, and a row deleted moves every
row behind it one place up: the row that crosses a page boundary the client has passed
is served on neither page. That is the case that loses rows, and tests need it.
"""

from __future__ import annotations

import bisect
import typing as t


def row_key(row: dict) -> tuple[str, str]:
    return (row["created_at"], row["id"])


class Paging(t.TypedDict, total=False):
    """How a server pages a list where the docs leave it open (`LiveList.page`)."""

    whole: bool
    ignore_page: bool
    order: str


class BadPageRequest(ValueError):
    """`page` or `limit` that is not a positive integer: a 400."""


class LiveList:
    """One page-numbered list: its rows oldest first, and how the server pages them."""

    def __init__(
        self,
        rows: t.Iterable[dict] = (),
        *,
        default_limit: int = 25,
        max_limit: int = 100,
        fixed_limit: int | None = None,
    ) -> None:
        self.rows: list[dict] = sorted(rows, key=row_key)
        self.default_limit = default_limit
        self.max_limit = max_limit
        # Lists documented with no paging parameters serve this many rows whatever `limit` asks.
        self.fixed_limit = fixed_limit

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> t.Iterator[dict]:
        return iter(self.rows)

    def add(self, row: dict) -> None:
        bisect.insort(self.rows, row, key=row_key)

    def remove(self, ids: t.Collection[str]) -> list[dict]:
        removed = [row for row in self.rows if row["id"] in ids]
        self.rows = [row for row in self.rows if row["id"] not in ids]
        return removed

    def page(
        self,
        query: dict[str, list[str]],
        keep: t.Callable[[dict], bool] | None = None,
        *,
        rows: list[dict] | None = None,
        whole: bool = False,
        ignore_page: bool = False,
        order: str = "oldest_first",
    ) -> dict:
        """The envelope `{"items", "total", "page", "limit", "has_more"}` for a request's query
        (over `rows` in their order instead of this list's, when given).

        `whole`: every row, whatever `page` and `limit` ask, in the envelope the list always
        sends (page 1, its usual `limit`, `has_more` false). `ignore_page`: page 1, whatever
        `page` asks. Both are servers a list documented without paging parameters may be.
        `order`: `newest_first` or `updated_first` (most recently updated first) instead of oldest
        first.
        """
        number = _positive(query, "page", 1)
        limit = _positive(query, "limit", self.default_limit)
        limit = self.fixed_limit or min(limit, self.max_limit)
        rows = self.rows if rows is None else rows
        rows = rows if keep is None else [row for row in rows if keep(row)]
        if order == "newest_first":
            rows = rows[::-1]
        elif order == "updated_first":
            rows = sorted(rows, key=lambda row: (row.get("updated_at") or "", row["id"]), reverse=True)
        if whole:
            items = [dict(row) if isinstance(row, dict) else row for row in rows]
            return {"items": items, "total": len(rows), "page": 1, "limit": limit, "has_more": False}
        if ignore_page:
            number = 1
        start = (number - 1) * limit
        # Copies, so that a later change is not seen through a served page (bad rows served as they are).
        items = [dict(row) if isinstance(row, dict) else row for row in rows[start : start + limit]]
        return {
            "items": items,
            "total": len(rows),
            "page": number,
            "limit": limit,
            "has_more": start + limit < len(rows),
        }


def _positive(query: dict[str, list[str]], name: str, default: int) -> int:
    raw = query.get(name, [str(default)])[0]
    if not raw.isdigit() or int(raw) < 1:
        raise BadPageRequest(f"{name} must be a positive integer")
    return int(raw)
