"""The base stream that knows the Vobiz API: base URL, auth, page envelopes, errors."""

from __future__ import annotations

import typing as t
from functools import cached_property

from singer_sdk.authenticators import BearerTokenAuthenticator, SimpleAuthenticator
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.streams import RESTStream

from tap_vobiz.pagination import CursorPaginator, MalformedPageError, read_page

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context


class VobizStream(RESTStream[str | None]):
    """A Vobiz listing: `{"items": [...], "has_more", "next_cursor"}` behind header auth."""

    # The records' own order is not the replication order (pages are newest first).
    is_sorted = False

    @property
    def url_base(self) -> str:
        return str(self.config["api_url"]).rstrip("/")

    @cached_property
    def authenticator(self) -> SimpleAuthenticator | BearerTokenAuthenticator:
        if self.config.get("bearer_token"):
            return BearerTokenAuthenticator(token=self.config["bearer_token"])
        return SimpleAuthenticator(
            auth_headers={
                "X-Auth-ID": self.config["auth_id"],
                "X-Auth-Token": self.config["auth_token"],
            }
        )

    @property
    def http_headers(self) -> dict:
        return {"Accept": "application/json"}

    @property
    def timeout(self) -> int:
        return int(self.config.get("request_timeout", 60))

    def get_url_params(self, context: Context | None, next_page_token: str | None) -> dict:
        return {"cursor": next_page_token} if next_page_token else {}

    def validate_response(self, response: requests.Response) -> None:
        """Classify errors as the SDK does, and retry 2xx bodies that are not a page."""
        super().validate_response(response)
        try:
            read_page(response)
        except MalformedPageError as error:
            raise RetriableAPIError(f"{error} for path {self.path}", response) from error

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        for item in read_page(response)["items"]:
            if isinstance(item, dict):
                yield item
            else:
                self.logger.warning("Skipping a %s item that is not an object", self.name)

    def get_new_paginator(self) -> CursorPaginator:
        return CursorPaginator()
