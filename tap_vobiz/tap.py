"""The Vobiz tap: its settings and its streams."""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import signal
import sys
import typing as t

import click
from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError, MapExpressionError, MappingError
from singer_sdk.helpers._catalog import get_selected_schema
from singer_sdk.helpers._classproperty import classproperty
from singer_sdk.plugin_base import _ConfigInput
from singer_sdk.singerlib import StateMessage
from typing_extensions import override

from tap_vobiz.account_streams import CannedResponsesStream, ChannelsStream, ContactsStream, TemplatesStream
from tap_vobiz.call_streams import CallLogsStream
from tap_vobiz.campaign_streams import CampaignRecipientsStream, CampaignsStream
from tap_vobiz.capture_streams import CAPTURE_STREAM_TYPES, CaptureStream
from tap_vobiz.client import VobizStream
from tap_vobiz.conversation_streams import ConversationsStream, MessagesStream
from tap_vobiz.errors import ApiNotFoundError, EndpointNotFoundError, StreamError, VobizError
from tap_vobiz.input_files import InputFileError, read_catalog_file, read_config_files, read_state_file
from tap_vobiz.output import SingerOutput
from tap_vobiz.pacing import PACER_OFF_VARIABLE, Pacer
from tap_vobiz.resume import ResumableFanOut
from tap_vobiz.run import Run
from tap_vobiz.run_report import RunReport
from tap_vobiz.settings import (
    CONFIG_SCHEMA,
    config_errors,
    environment_config,
    range_errors_of_the_schema,
    start_date_reading,
    unknown_settings,
    without_secret,
)

if t.TYPE_CHECKING:
    from types import FrameType

    from tap_vobiz.page_lists import PageListStream


STREAM_TYPES: tuple[type[VobizStream], ...] = (
    ConversationsStream,
    MessagesStream,
    ChannelsStream,
    TemplatesStream,
    ContactsStream,
    CannedResponsesStream,
    CampaignsStream,
    CampaignRecipientsStream,
    CallLogsStream,
)


class TapVobiz(Tap):
    """Vobiz WhatsApp: conversations, messages, channels, templates, contacts, campaigns and call logs."""

    name = "tap-vobiz"
    message_writer_class = SingerOutput

    config_jsonschema = CONFIG_SCHEMA

    @classmethod
    @override
    def get_singer_command(cls) -> click.Command:
        """The SDK's command, with `--state` and `--catalog` taken as paths that `invoke` reads.

        As `click.File`s a missing file is a usage error (exit 2) and the text is read
        unchecked; as paths every mistake in them is one line (`tap_vobiz.input_files`).
        """
        command = super().get_singer_command()
        for param in command.params:
            if param.name in {"state", "catalog"}:
                param.type = click.STRING
        return command

    @classmethod
    @override
    def cb_config(cls, ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> _ConfigInput:
        """The `--config` files (and `ENV`), read and checked before anything else runs."""
        with cls._one_line_input_errors():
            config, parse_env = read_config_files(value)
        return _ConfigInput(config=config, parse_env=parse_env)

    @classmethod
    @override
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """`--test`: check the config and the credentials with one request, and say so in one line.

        The SDK's `--test` syncs a record of every stream, with a traceback for refused
        credentials; `--test=schema` (the schemas, no request) is left to it.
        """
        if value in {"disabled", "schema"}:
            super().cb_test(ctx, param, value)
            return
        config: _ConfigInput = ctx.params.get("config", _ConfigInput())
        try:
            tap = cls(config=config.config, parse_env_config=config.parse_env, validate_config=True)
            tap.check_connection()
        except ConfigValidationError as invalid:
            for error in invalid.errors:
                cls.logger.error("%s", error)
            ctx.exit(1)
        except VobizError as error:
            cls.logger.error("%s", error)
            ctx.exit(1)
        ctx.exit(0)

    def check_connection(self) -> None:
        """One request, the first page of the channels list: a VobizError names what to fix."""
        self.metrics_logger.setLevel(str(self.config["metrics_log_level"]))
        channels = t.cast("PageListStream", self.streams["channels"])
        try:
            page = channels.fetch_page(None, 1)
        except EndpointNotFoundError as error:
            raise ApiNotFoundError(
                f"Vobiz answered 404 for {channels.path} ({error}): api_url {self.config['api_url']} is not "
                "the Vobiz API's base URL (it ends in /api/v1/messaging); check api_url"
            ) from None
        except StreamError as error:
            raise VobizError(
                f"The credentials work, but {error}: {error.advice.format(stream='channels')}"
            ) from None
        listed = page.envelope.get("total", len(page.items))
        self.logger.info(
            "The config works: Vobiz at %s accepted the credentials (%s channels listed)",
            self.config["api_url"],
            listed,
        )

    @classmethod
    @override
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        state: str | None = None,
        catalog: str | None = None,
    ) -> None:
        """The SDK's sync invocation, with the state and catalog files checked before the tap starts."""
        if about:
            cls.print_about(about_format)
            sys.exit(0)
        cls.print_version(print_fn=cls.logger.info)
        config = config or _ConfigInput()
        with cls._one_line_input_errors():
            state_dict = read_state_file(state) if state is not None else None
            stream_names = {stream_type.name for stream_type in (*STREAM_TYPES, *CAPTURE_STREAM_TYPES)}  # type: ignore[misc]
            catalog_dict = read_catalog_file(catalog, stream_names) if catalog is not None else None
        tap = cls(
            config=config.config,
            state=state_dict,
            catalog=catalog_dict,
            parse_env_config=config.parse_env,
            validate_config=True,
        )
        tap.sync_all()

    @classmethod
    @contextlib.contextmanager
    def _one_line_input_errors(cls) -> t.Iterator[None]:
        try:
            yield
        except InputFileError as error:
            cls.logger.error("%s", error)
            raise SystemExit(1) from None

    @classmethod
    @override
    def append_builtin_config(cls, config_jsonschema: dict) -> None:
        """The SDK's settings (`stream_maps`, flattening), the `"null"` of a nullable `anyOf` made a schema.

        The SDK writes `stream_maps.__else__` (and a stream map's `__else__`) as `{"anyOf":
        [{"const": "__NULL__"}, {"type": "null"}, "null"]}`: a bare string where a schema belongs,
        on which validating any other value (`"__else__": "everything"`) crashed, a traceback. As
        `{"type": "null"}` such a value is refused in one line, as any setting's.
        """
        super().append_builtin_config(config_jsonschema)
        _null_schemas_in_any_of(config_jsonschema)

    @override
    def setup_mapper(self) -> None:
        """The SDK's stream maps, each stream registered with the schema it is read with: the
        selected properties of a selected stream, the whole schema of one not selected.

        The SDK (0.54; meltano/sdk#1942) registers a stream that is not selected with the schema
        of its selected properties, none, and its key properties: a map naming it (`{"call_logs":
        {"__filter__": ...}}`, a property) then failed on `Invalid key properties`, with a traceback.
        Such a map is not applied (the stream is not read), which one INFO line says. A map that is
        invalid (an expression that does not parse, a key property the stream lacks) is one ERROR
        line and exit 1, before any request.
        """
        super(Tap, self).setup_mapper()  # the mapper alone; `Tap.setup_mapper` registers the streams
        not_selected = []
        try:
            for entry in self.catalog.streams:
                name = entry.stream or entry.tap_stream_id
                selection = entry.metadata.resolve_selection()
                schema = entry.schema.to_dict()
                if selection[()]:
                    schema = get_selected_schema(name, schema, selection)
                self.mapper.register_raw_stream_schema(name, schema, entry.key_properties)
                # A map names the stream: its first map is not the default, or there are more (aliases).
                maps = self.mapper.stream_maps[name]
                if not selection[()] and (
                    len(maps) > 1 or type(maps[0]) is not self.mapper.default_mapper_type
                ):
                    not_selected.append(name)
        except MappingError as error:
            self.logger.error("%s", invalid_stream_maps(error))
            raise SystemExit(1) from None
        if not_selected:
            self.logger.info(
                "stream_maps: the maps for %s are not applied: not selected", ", ".join(sorted(not_selected))
            )

    @classproperty
    @override
    def _env_var_config(cls) -> dict[str, t.Any]:
        """Settings from `TAP_VOBIZ_*` variables, of every kind (`tap_vobiz.settings.environment_config`)."""
        schema = copy.deepcopy(cls.config_jsonschema)
        cls.append_builtin_config(schema)
        return environment_config(schema, cls._env_var_prefix)

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Add the rules a JSON schema states poorly: credentials, ranges, dates; never echo a secret.

        The SDK's messages quote the value (`987654321012 is not of type 'string' in
        config['auth_token']`): for a secret setting, whatever its type, the message names
        the setting alone.
        """
        secrets = [name for name, prop in self.config_jsonschema["properties"].items() if prop.get("secret")]
        errors = [
            without_secret(error, secrets)
            for error in super()._validate_config(raise_errors=False)
            if not range_errors_of_the_schema(error)
        ]
        errors += config_errors(self.config)
        for warning in unknown_settings(self.config, self.config_jsonschema["properties"]):
            self.logger.warning("%s", warning)
        if not errors and (reading := start_date_reading(self.config.get("start_date"))):
            self.logger.info("%s", reading)
        if errors and raise_errors:
            raise ConfigValidationError("Invalid tap-vobiz config: " + "; ".join(errors), errors=errors)
        for error in errors:  # --discover reads no setting: it goes on, and says what a sync would refuse
            self.logger.warning("A sync would refuse this config: %s", error)
        return errors

    @override
    def discover_streams(self) -> list[VobizStream | CaptureStream]:
        """The API's streams, and with `webhook_capture` set the streams read from the capture."""
        streams: list[VobizStream | CaptureStream] = [stream_type(self) for stream_type in STREAM_TYPES]
        if self.config.get("webhook_capture"):
            streams += [stream_type(self) for stream_type in CAPTURE_STREAM_TYPES]
        return streams

    @functools.cached_property
    def run(self) -> Run:
        """What the run's streams share (`tap_vobiz.run`): made with the first stream, handed to each."""
        rate, workers = self.config.get("max_requests_per_second"), self.config.get("max_workers")
        return Run(
            report=RunReport(progress_interval=float(self.config["progress_interval_seconds"])),
            pacer=Pacer(
                float(rate) if rate is not None else None,
                max_in_flight=int(workers) if workers is not None else None,
                # benchmarks/run.py's comparison only, not a setting: the pacer off (the SDK's way).
                learns=os.environ.get(PACER_OFF_VARIABLE) != "1",
            ),
            check_api_url=self._check_api_url,
        )

    def _check_api_url(self, name: str, error: EndpointNotFoundError) -> None:
        """Raise ApiNotFoundError when another list (channels, or conversations) is not found either."""
        stream = t.cast("VobizStream", self.streams[name])
        other = "conversations" if name == "channels" else "channels"
        probe = t.cast("PageListStream", self.streams[other])
        try:
            probe.fetch_page(None, 1)
        except EndpointNotFoundError:
            raise ApiNotFoundError(
                f"Vobiz answered 404 for {stream.path} and {probe.path} ({error}): api_url "
                f"{self.config['api_url']} is not the Vobiz API's base URL (it ends in "
                "/api/v1/messaging); check api_url"
            ) from None
        except StreamError:
            pass  # it answers, if with an error: the endpoint, not the URL

    @override  # type: ignore[misc]  # final in the SDK (docs/development.md: "The SDK's private names")
    def sync_all(self) -> None:
        """Sync, then log the run's counts; known failures end it with one line and exit 1.

        The SDK marks `sync_all` final; this extends it (the SDK's sync runs unchanged
        inside) because it is the one place that sees the whole run end, well or not.
        """
        self.run.report.streams = [name for name, stream in self.streams.items() if stream.selected]
        self.metrics_logger.setLevel(str(self.config["metrics_log_level"]))
        if problems := [
            p for s in self.streams.values() if s.selected and (p := getattr(s, "catalog_problem", None))
        ]:
            self.logger.error("Cannot use the catalog: %s", "; ".join(problems))
            raise SystemExit(1)
        self._syncing = True
        try:
            super().sync_all()
        except TerminatedBySignal as stop:
            # Here, not in the signal handler: the handler may have interrupted the writer
            # in the middle of a RECORD (its buffer in use); now the writer is free.
            for stream in self.streams.values():
                if isinstance(stream, ResumableFanOut):
                    stream.keep_position()
            # Written even when it equals the last STATE (the SDK's `write_state` would skip it):
            # records of a list not finished may have gone out since, and the run ends on its STATE.
            self.write_message(StateMessage(value=self.state))
            self.run.report.log(self.logger, completed=False, interrupted_by=signal.Signals(stop.signum).name)
            _ignore_stop_signals()
            raise SystemExit(128 + stop.signum) from None
        except VobizError as error:
            self.logger.error("%s", error)
            self.run.report.log(self.logger, completed=False)
            raise SystemExit(1) from None
        except MapExpressionError as error:
            # A user's stream_maps expression, not a fault of the tap: one line, no traceback.
            self.logger.error("%s", invalid_stream_maps(error))
            self.run.report.log(self.logger, completed=False)
            raise SystemExit(1) from None
        except Exception:
            self.run.report.log(self.logger, completed=False)
            raise
        if failed := list(self.run.failed_streams):
            self.run.report.log(self.logger, completed=False, failed=failed)
            raise SystemExit(1)
        self.run.report.log(self.logger, completed=True)

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """On SIGTERM/SIGINT stop: a sync ends writing the STATE (`sync_all`), and exits 128+signal.

        The SDK writes the STATE from the handler itself, which fails when the signal
        lands while a RECORD is being written to a slow target (`BufferError`: the
        writer's buffer is in use) and loses the final STATE. A second signal while the
        run ends (a scheduler's SIGTERM to the whole pipeline, then Meltano's own) is ignored:
        it would interrupt the final STATE or the last flush.
        """
        if getattr(self, "_stopping", False):
            return
        self._stopping = True
        # A handler that does nothing until the final STATE is out, SIG_IGN only then
        # (`_ignore_stop_signals`): Ctrl-C on `meltano run` sends SIGINT to the whole group and
        # Meltano its SIGTERM a few milliseconds later, often before Python has run this handler; a
        # signal already caught whose handler became SIG_IGN meanwhile is an OSError ("Signal 15
        # ignored due to race condition") raised wherever the tap is, with a traceback.
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, _already_stopping)
        if getattr(self, "_syncing", False):
            raise TerminatedBySignal(signum)
        self.logger.warning(
            "Interrupted by %s before the sync began: nothing was read", signal.Signals(signum).name
        )
        _ignore_stop_signals()
        sys.exit(128 + signum)


def _already_stopping(signum: int, frame: FrameType | None) -> None:
    """A second SIGTERM/SIGINT while the run ends: ignored, it would interrupt the final STATE."""


def _ignore_stop_signals() -> None:
    """SIGTERM/SIGINT ignored at the OS level, once the final STATE is written: while the interpreter
    shuts down it restores the default action of signals a Python function handled, and a second
    SIGTERM then killed the tap (exit -15)."""
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, signal.SIG_IGN)


class TerminatedBySignal(BaseException):
    """SIGTERM/SIGINT during a sync: unwinds it (past the SDK's error handling) to `sync_all`."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def invalid_stream_maps(error: MappingError) -> str:
    """The one line of a `stream_maps` that cannot work: the SDK's words, and what raised them."""
    cause = f" ({type(error.__cause__).__name__}: {error.__cause__})" if error.__cause__ else ""
    return f"Invalid stream_maps: {error}{cause}"


def _null_schemas_in_any_of(schema: object) -> None:
    """Each bare `"null"` in an `anyOf` of `schema` (in place, at any depth) made `{"type": "null"}`."""
    if isinstance(schema, dict):
        if isinstance(any_of := schema.get("anyOf"), list):
            schema["anyOf"] = [{"type": "null"} if option == "null" else option for option in any_of]
        for value in schema.values():
            _null_schemas_in_any_of(value)
    elif isinstance(schema, list):
        for value in schema:
            _null_schemas_in_any_of(value)


if __name__ == "__main__":
    TapVobiz.cli()
