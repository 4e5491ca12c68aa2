"""Laravel's length-aware paginator for RosettaChat lists: `?page=&per_page=`, `meta` and `links`."""

from __future__ import annotations

import math
from urllib.parse import urlencode

from handlers.rosetta import schemas as s
from handlers.rosetta.forms import Field, query, validate

PAGE = {
    "per_page": Field(type="integer", min=1, max=100, description="Items a page; 15 when absent.", example=15),
    "page": Field(type="integer", min=1, max=1_000_000, description="The page, from 1.", example=1),
}


def paginate(request, rows, render, keep: dict | None = None) -> tuple[list, s.PageMeta, s.PageLinks]:
    """One page of the (ordered) peewee query `rows`, each rendered, with Laravel's meta and links (which
    carry the `keep` query parameters too, the list's filters)."""
    form = validate(query(request), PAGE)
    per_page, page = form.get("per_page", 15), form.get("page", 1)
    total = rows.count()
    items = [render(row) for row in rows.paginate(page, per_page)]
    last = max(1, math.ceil(total / per_page))

    def url(n: int) -> str:
        params = {**(keep or {}), "page": n, "per_page": per_page}
        return f"{request.scheme}://{request.host}{request.path}?{urlencode(params)}"

    first = (page - 1) * per_page + 1 if items else None
    return (items,
            s.PageMeta(page, first, last, request.path, per_page, first + len(items) - 1 if items else None, total),
            s.PageLinks(url(1), url(last), url(page - 1) if page > 1 else None, url(page + 1) if page < last else None))
