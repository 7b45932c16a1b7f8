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

A fingerprint says only what was read. The resume object of an interrupted run
(`tap_vobiz.resume`) keeps those of the quiet campaigns up to its position (`quiet_before`,
`quiet_counters`), never of those after it, which it did not read: a resumed run compares them
with the campaigns up to that position now, and the campaigns after it with the fingerprints
the last completed run left (`quiet_campaigns`). Until a resumed run has re-read what the
interrupted one finished (its position has not moved on), its STATEs keep the interrupted
run's fingerprints as they were: its own would say that a campaign whose counters moved, not
yet re-read, had been.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import typing as t

from singer_sdk import typing as th
from typing_extensions import override

from tap_vobiz.decoding import format_timestamp, minus, parse_timestamp
from tap_vobiz.fan_out import ListOutcome, Parent, ParentList
from tap_vobiz.incremental import SyncWindow
from tap_vobiz.page_lists import IncrementalPageListStream
from tap_vobiz.resume import OrderKey, ResumableFanOut, Resume, order_key
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
        self._changed_buckets: dict[tuple[dt.datetime, OrderKey | None], set[int]] = {}
        self._quiet: dict[dt.datetime, QuietCampaigns] = {}
        return self.plan_lists(self._campaigns, reads=self._can_have_changed, outcome=outcome)

    def _can_have_changed(self, campaign: t.Mapping[str, t.Any], since: dt.datetime | None) -> bool:
        if since is None:
            return True
        cutoff = minus(since, self.receipt_window)
        if can_change(campaign, since, cutoff):
            return True
        return is_quiet(campaign, cutoff) and bucket(campaign) in self._buckets_changed_before(
            cutoff, self._finished_by(campaign)
        )

    def _finished_by(self, campaign: t.Mapping[str, t.Any]) -> OrderKey | None:
        """The interrupted run's position, when this run resumes one that finished `campaign`; else None."""
        previous = self._plan.previous if self._plan is not None else None
        if previous is None or previous.after is None:
            return None
        return previous.after if order_key(campaign, self.order_field) <= previous.after else None

    def _quiet_before(self, cutoff: dt.datetime) -> QuietCampaigns:
        """The campaigns quiet before `cutoff`, in order (worked out once per run and cutoff)."""
        if (quiet := self._quiet.get(cutoff)) is None:
            quiet = self._quiet[cutoff] = QuietCampaigns(self._campaigns, cutoff, self.order_field)
        return quiet

    def _buckets_changed_before(self, cutoff: dt.datetime, finished: OrderKey | None) -> set[int]:
        """The buckets of campaigns quiet before `cutoff` whose counters moved since they were last
        fingerprinted: those an interrupted run finished (up to its position `finished`) against the
        fingerprints it kept of them, the others against those of the last completed run (of every
        quiet campaign); all buckets when there are none to compare with."""
        if (changed := self._changed_buckets.get((cutoff, finished))) is not None:
            return changed
        quiet = self._quiet_before(cutoff)
        if finished is None:
            now, stored = quiet.every(), self.stream_state.get("quiet_campaigns")
        else:
            assert self._plan is not None
            now, stored = quiet.up_to(finished), _quiet_of(self._plan.stored())
        fingerprinted = isinstance(stored, dict) and stored.get("before") == quiet.before
        before = stored.get("counters") if fingerprinted and isinstance(stored, dict) else None
        changed = {
            b for b in range(QUIET_BUCKETS) if not isinstance(before, list) or before[b : b + 1] != [now[b]]
        }
        if changed and (quiet.counted if finished is not None else len(quiet)):
            self.logger.info(
                "Reading the recipients of quiet campaigns%s in %d of %d buckets whose counters moved",
                " the interrupted run had finished" if finished is not None else "",
                len(changed),
                QUIET_BUCKETS,
            )
        self._changed_buckets[(cutoff, finished)] = changed
        return changed

    @override
    def resume_extra(self, resume: Resume) -> dict[str, t.Any]:
        """The fingerprints of the campaigns quiet before the cutoff a resumed run will use for those
        finished here, up to the position (those after it were not read), so that it reads again only
        the quiet ones whose counters move meanwhile. A resumed run that has not moved past the
        interrupted run's position is still re-reading what that run finished: it keeps that run's."""
        plan = self._plan
        if plan is not None and plan.previous is not None and resume.after == plan.previous.after:
            kept = plan.stored()
            return {name: kept.get(name) for name in self.extra_keys}
        cutoff = minus(resume.finished_horizon(self.lookback, self.start_date), self.receipt_window)
        # The cutoff follows the interrupted (or this) run's clock: one QuietCampaigns per run, its
        # pointer moved on as the position grows, not every campaign at every STATE.
        quiet = self._quiet_before(cutoff)
        return {"quiet_before": quiet.before, "quiet_counters": quiet.up_to(resume.after)}

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


class QuietCampaigns:
    """The campaigns quiet before one cutoff in the fan-out's order, each with its bucket and digest:
    the fingerprints of those up to a position that only grows, kept up as it does."""

    def __init__(self, campaigns: t.Iterable[t.Mapping[str, t.Any]], cutoff: dt.datetime, order_field: str):
        self.before = format_timestamp(cutoff)
        self._quiet = sorted(
            (order_key(c, order_field), bucket(c), _campaign_digest(c))
            for c in campaigns
            if is_quiet(c, cutoff)
        )
        self._position: OrderKey | None = None
        self._sums = [0] * QUIET_BUCKETS
        self.counted = 0  # how many of them are at or before the position

    def __len__(self) -> int:
        return len(self._quiet)

    def every(self) -> list[str]:
        """The fingerprints of all of them."""
        sums = [0] * QUIET_BUCKETS
        for _, number, digest in self._quiet:
            sums[number] = (sums[number] + digest) % 2**64
        return _hex(sums)

    def up_to(self, position: OrderKey | None) -> list[str]:
        """The fingerprints of those at or before `position` (None: before every campaign)."""
        if position is None or (self._position is not None and position < self._position):
            self._sums, self.counted = [0] * QUIET_BUCKETS, 0  # moved back: counted again
        self._position = position
        while position is not None and self.counted < len(self._quiet):
            order, number, digest = self._quiet[self.counted]
            if order > position:
                break
            self._sums[number] = (self._sums[number] + digest) % 2**64
            self.counted += 1
        return _hex(self._sums)


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
        sums[bucket(campaign)] = (sums[bucket(campaign)] + _campaign_digest(campaign)) % 2**64
    return _hex(sums)


def _campaign_digest(campaign: t.Mapping[str, t.Any]) -> int:
    """One quiet campaign's share of its bucket's fingerprint: its id, status and counters."""
    return _digest(repr([campaign["id"], campaign.get("status"), *(campaign.get(name) for name in COUNTERS)]))


def _hex(sums: list[int]) -> list[str]:
    return [f"{value:016x}" for value in sums]


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
