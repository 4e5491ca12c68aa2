"""Paging of Sector searches: `limit` and `cursor` in the filter, the next cursor in a header.

The spec answers a search with a bare JSON array, so the cursor for the next page travels in
the `X-Next-Cursor` response header; it is absent on the last page.
"""

from config import settings
from domain.search import Page
from handlers.bodies import json


def page_of(body) -> Page:
    return Page(int(body.limit or settings().limits.search_default), body.cursor)


def paged(items: list, cursor: str | None):
    return json(items, headers={"X-Next-Cursor": cursor} if cursor else None)
