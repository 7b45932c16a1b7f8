"""Broadcast campaigns and the row of each of their recipients.

Both are page-numbered lists with no time filter. `campaigns` is read whole each run (it
is small); `campaign_recipients` reads the recipients only of the campaigns that can
still change. Receipts keep arriving after a campaign completes, and the docs say only
that its counters move as they do, not that its `updated_at` does. So a campaign's
recipients are read when:

- it is not finished (`draft`, `scheduled`, `sending`, `paused`, or a status not known yet);
- it finished within `receipt_window_days` of the horizon (by `completed_at`, else
  `started_at`, else `created_at`), or changed or started since the horizon;
- it finished before that (*quiet*), but the counters of its *bucket* changed since the
  last run: the state keeps one fingerprint of the counters of the quiet campaigns per
  bucket (16 buckets by id, a few hundred bytes however many campaigns), so a late
  receipt that moves a counter and nothing else is read on the next run, at the cost of
  the quiet campaigns of one bucket. Quiet campaigns whose counters did not move cost nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import typing as t

from singer_sdk import typing as th
from typing_extensions import override

from tap_vobiz.client import Parent, ParentList
from tap_vobiz.decoding import format_timestamp, minus, parse_timestamp
from tap_vobiz.incremental import SyncWindow
from tap_vobiz.page_lists import IncrementalPageListStream, ListOutcome
from tap_vobiz.resume import ResumableFanOut, Resume
from tap_vobiz.schema_types import (
    MALFORMED_FIELDS_PROPERTY,
    FreeFormObjectType,
    enum,
    id_property,
    timestamp,
)

if t.TYPE_CHECKING:
    pass

CAMPAIGN_STATUSES = ["draft", "scheduled", "sending", "paused", "completed", "cancelled", "failed"]
# A campaign in any other status (unknown ones included) can still send, or change.
FINISHED_CAMPAIGN_STATUSES = frozenset({"completed", "cancelled", "failed"})
RECIPIENT_STATUSES = ["queued", "sent", "delivered", "read", "failed", "skipped"]
QUIET_BUCKETS = 16
COUNTERS = (
    "total_recipients",
    "sent_count",
    "delivered_count",
    "read_count",
    "failed_count",
    "skipped_count",
)


def _count(name: str, description: str) -> th.Property:
    return th.Property(name, th.IntegerType, description=description)


class CampaignsStream(IncrementalPageListStream):
    """Broadcast campaigns: read whole each run; emits those changed since bookmark - lookback_hours."""

    name = "campaigns"
    path = "/campaigns"
    # Recipients point at campaigns: all of them, whatever start_date says.
    honours_start_date = False

    schema = th.PropertiesList(
        id_property("Campaign id (UUID); `campaign_id` in campaign_recipients."),
        th.Property("channel_id", th.StringType, description="The sending channel (UUID)."),
        th.Property("name", th.StringType, description="Campaign name."),
        th.Property("template_id", th.StringType, description="The template sent (UUID)."),
        th.Property("template_name", th.StringType, description="The template's name."),
        th.Property("template_lang", th.StringType, description="The template's language, e.g. `en_US`."),
        th.Property(
            "status",
            th.StringType,
            description=enum(
                "Lifecycle status; `completed` means every recipient was worked through, not "
                "that every send succeeded (receipts keep arriving for days).",
                CAMPAIGN_STATUSES,
                {"running": "today's `sending`: still sending"},
            ),
        ),
        _count("total_recipients", "Audience size."),
        _count("sent_count", "Recipients sent to, as Vobiz counts them (updated as receipts arrive)."),
        _count("delivered_count", "Recipients the message was delivered to."),
        _count("read_count", "Recipients who read it."),
        _count("failed_count", "Recipients the send failed for (see their `error_code`)."),
        _count("skipped_count", "Recipients skipped."),
        _count("batch_size", "Recipients per batch."),
        _count("batch_delay_ms", "Delay between batches, in milliseconds."),
        th.Property("pause_reason", th.StringType, description="Why it was paused."),
        timestamp("scheduled_at", "When it is scheduled to start; null if not scheduled"),
        timestamp("started_at", "When sending started; null until then"),
        timestamp("completed_at", "When it completed (or was cancelled or failed); null until then"),
        timestamp("created_at", "When it was created"),
        timestamp("updated_at", "When it, or its counters, last changed"),
        MALFORMED_FIELDS_PROPERTY,
    ).to_dict()


class CampaignRecipientsStream(ResumableFanOut, IncrementalPageListStream):
    """One row per recipient of a campaign, read for the campaigns that can still change."""

    name = "campaign_recipients"
    path = "/campaigns/{campaign_id}/recipients"
    parent = Parent("campaigns", "campaign_id")
    order_field = "created_at"
    # Flat (a string and a list, no object): a merge of states onto a cleared object must not fail.
    extra_keys = ("quiet_before", "quiet_counters")
    _campaigns: tuple[dict[str, t.Any], ...] = ()  # this run's campaign list (set per run)

    schema = th.PropertiesList(
        id_property("Recipient row id (UUID)."),
        th.Property(
            "campaign_id",
            th.StringType,
            description="The campaign (UUID); filled in from the campaign it was read under when "
            "the API omits it.",
        ),
        th.Property("contact_id", th.StringType, description="The contact (UUID)."),
        th.Property("phone_number", th.StringType, description="The number it was sent to, E.164."),
        th.Property(
            "variables",
            FreeFormObjectType(),
            description="Template variables sent to this recipient, kept whole.",
        ),
        th.Property(
            "status",
            th.StringType,
            description=enum("Delivery status; moves as WhatsApp reports.", RECIPIENT_STATUSES),
        ),
        th.Property("meta_message_id", th.StringType, description="Meta's `wamid`, once sent."),
        th.Property(
            "error_code",
            th.StringType,
            description="Meta's error code on failure, e.g. `131026` (not on WhatsApp), `131042` (payment).",
        ),
        th.Property("error_desc", th.StringType, description="Meta's error text."),
        timestamp("sent_at", "When it was sent; null until then"),
        timestamp("delivered_at", "When it was delivered; null until then"),
        timestamp("read_at", "When it was read; null until then"),
        timestamp("created_at", "When the row was created"),
        timestamp("updated_at", "When its status last changed"),
        MALFORMED_FIELDS_PROPERTY,
    ).to_dict()

    @override
    def lists_to_read(self, outcome: ListOutcome) -> list[ParentList]:
        """The campaigns whose recipients can have changed since the time each is read from; the
        others cost nothing."""
        self._campaigns = tuple(self.parent_rows(outcome))
        self._changed_buckets: dict[dt.datetime, set[int]] = {}
        self._resume_quiet: tuple[dt.datetime, dict[str, t.Any]] | None = None
        return self.plan_lists(self._campaigns, reads=self._can_have_changed, outcome=outcome)

    def _can_have_changed(self, campaign: t.Mapping[str, t.Any], since: dt.datetime | None) -> bool:
        if since is None:
            return True
        cutoff = minus(since, self.receipt_window)
        if can_change(campaign, since, cutoff):
            return True
        return is_quiet(campaign, cutoff) and bucket(campaign) in self._buckets_changed_before(cutoff)

    def _buckets_changed_before(self, cutoff: dt.datetime) -> set[int]:
        """The buckets of campaigns quiet before `cutoff` whose counters moved since they were last
        fingerprinted (by the last completed run, or by an interrupted one): all when none was."""
        if (changed := self._changed_buckets.get(cutoff)) is not None:
            return changed
        quiet = [row for row in self._campaigns if is_quiet(row, cutoff)]
        now = quiet_fingerprints(quiet)
        fingerprinted = [
            stored
            for stored in (
                self.stream_state.get("quiet_campaigns"),
                _quiet_of(self._plan.stored()) if self._plan else None,
            )
            if isinstance(stored, dict) and stored.get("before") == format_timestamp(cutoff)
        ]
        before = fingerprinted[0].get("counters") if fingerprinted else None
        changed = {
            b for b in range(QUIET_BUCKETS) if not isinstance(before, list) or before[b : b + 1] != [now[b]]
        }
        if changed and quiet:
            self.logger.info(
                "Reading the recipients of quiet campaigns in %d of %d buckets whose counters moved",
                len(changed),
                QUIET_BUCKETS,
            )
        self._changed_buckets[cutoff] = changed
        return changed

    @override
    def resume_extra(self, resume: Resume) -> dict[str, t.Any]:
        """The fingerprints of the campaigns quiet before the cutoff a resumed run will use for
        those finished here, so it reads again only the quiet ones whose counters move meanwhile."""
        cutoff = minus(resume.finished_horizon(self.lookback, self.start_date), self.receipt_window)
        if self._resume_quiet is None or self._resume_quiet[0] != cutoff:
            # The cutoff follows the run's clock: worked out once per run, not at every STATE.
            quiet = [row for row in self._campaigns if is_quiet(row, cutoff)]
            self._resume_quiet = (
                cutoff,
                {"before": format_timestamp(cutoff), "counters": quiet_fingerprints(quiet)},
            )
        fingerprints = self._resume_quiet[1]
        return {"quiet_before": fingerprints["before"], "quiet_counters": fingerprints["counters"]}

    @property
    def receipt_window(self) -> dt.timedelta:
        return dt.timedelta(days=float(self.config["receipt_window_days"]))

    @override
    def finish_reading(self, *, settled: bool) -> None:
        """Keep, beside the bookmark, the fingerprints of the campaigns the next run will find quiet."""
        window = self._window
        super().finish_reading(settled=settled)
        if not settled or window is None or self.full_table or (bookmark := window.next_bookmark()) is None:
            return
        # The cutoff the next run computes from this bookmark.
        horizon = SyncWindow.start(bookmark, lookback=self.lookback, start_date=self.start_date).horizon
        assert horizon is not None
        cutoff = minus(horizon, self.receipt_window)
        self.stream_state["quiet_campaigns"] = {
            "before": format_timestamp(cutoff),
            "counters": quiet_fingerprints([row for row in self._campaigns if is_quiet(row, cutoff)]),
        }


def _quiet_of(kept: t.Mapping[str, t.Any]) -> dict[str, t.Any] | None:
    """The quiet campaigns' fingerprints a resume object keeps (`resume_extra`), as the state keeps them."""
    if "quiet_before" not in kept:
        return None
    return {"before": kept.get("quiet_before"), "counters": kept.get("quiet_counters")}


def _moment(campaign: t.Mapping[str, t.Any], *names: str) -> dt.datetime | None:
    """The first of these fields of a campaign that holds a timestamp."""
    return next((m for name in names if (m := parse_timestamp(campaign.get(name))) is not None), None)


def is_quiet(campaign: t.Mapping[str, t.Any], cutoff: dt.datetime) -> bool:
    """Finished before `cutoff` (horizon - receipt window): its receipts are late if they come at all."""
    if campaign.get("status") not in FINISHED_CAMPAIGN_STATUSES:
        return False
    finished = _moment(campaign, "completed_at", "started_at", "created_at")
    return finished is not None and finished < cutoff


def can_change(campaign: t.Mapping[str, t.Any], horizon: dt.datetime, cutoff: dt.datetime) -> bool:
    """Not quiet, or changed or started since the horizon (`updated_at`, `started_at`)."""
    if not is_quiet(campaign, cutoff):
        return True
    return any(
        (moment := parse_timestamp(campaign.get(name))) is not None and moment >= horizon
        for name in ("updated_at", "started_at")
    )


def bucket(campaign: t.Mapping[str, t.Any]) -> int:
    return _digest(str(campaign["id"])) % QUIET_BUCKETS


def quiet_fingerprints(campaigns: t.Iterable[dict[str, t.Any]]) -> list[str]:
    """Per bucket, one fingerprint of its campaigns' ids, statuses and counters (order does not matter)."""
    sums = [0] * QUIET_BUCKETS
    for campaign in campaigns:
        counters = [campaign["id"], campaign.get("status"), *(campaign.get(name) for name in COUNTERS)]
        sums[bucket(campaign)] = (sums[bucket(campaign)] + _digest(repr(counters))) % 2**64
    return [f"{value:016x}" for value in sums]


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
