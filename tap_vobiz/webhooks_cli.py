"""`vobiz-webhooks`: run the webhook receiver, and manage the account's webhook subscriptions.

    vobiz-webhooks serve --host 0.0.0.0 --port 8080 --capture LOCATION
    vobiz-webhooks subscribe --url https://hooks.example.com/vobiz [--secret-file F]
    vobiz-webhooks list
    vobiz-webhooks unsubscribe ID

The receiver's secret comes from `VOBIZ_WEBHOOK_SECRET` or `--secret-file` (one secret a line:
several are accepted while a secret is replaced), never from the command line, where other
users of the machine could read it. The subscription commands use the tap's settings (a
`--config` file and `TAP_VOBIZ_*` variables). Every error is one line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from typing_extensions import override

from tap_vobiz.webhook_command_input import SECRET_VARIABLE, UsageError, receiver_secrets
from tap_vobiz.webhook_receiver import DEFAULT_MAX_BODY_BYTES

EXTRA = "pip install 'tap-vobiz[webhooks]'"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    logging.basicConfig(level=logging.INFO, format="vobiz-webhooks: %(message)s", stream=sys.stderr)
    try:
        args = parser.parse_args(argv)
        return int(args.run(args))
    except UsageError as error:
        print(f"vobiz-webhooks: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vobiz-webhooks", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="receive webhooks and capture them durably")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on; 0 picks a free one")
    serve.add_argument(
        "--capture",
        required=True,
        metavar="LOCATION",
        help="where deliveries are written: a local directory, or an fsspec URL such as s3://bucket/prefix",
    )
    serve.add_argument("--secret-file", type=Path, help=f"file holding the secret (else ${SECRET_VARIABLE})")
    _refuse_secret_argument(serve)
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help=f"larger deliveries are refused with 413 (default {DEFAULT_MAX_BODY_BYTES})",
    )
    serve.set_defaults(run=_serve)

    config_help = "the tap's config file (JSON); TAP_VOBIZ_* variables apply too"
    subscribe = commands.add_parser("subscribe", help="subscribe a receiver's URL to the account's webhooks")
    subscribe.add_argument("--url", required=True, help="the receiver's https URL")
    subscribe.add_argument(
        "--secret-file", type=Path, help="file holding the secret to use (default: a new one, shown once)"
    )
    _refuse_secret_argument(subscribe)
    subscribe.add_argument("--config", type=Path, help=config_help)
    subscribe.set_defaults(run=_subscribe)

    listing = commands.add_parser("list", help="list the account's webhook subscriptions")
    listing.add_argument("--config", type=Path, help=config_help)
    listing.set_defaults(run=_list)

    unsubscribe = commands.add_parser("unsubscribe", help="delete a webhook subscription")
    unsubscribe.add_argument("id", help="the subscription's id (from `list`)")
    unsubscribe.add_argument("--config", type=Path, help=config_help)
    unsubscribe.set_defaults(run=_unsubscribe)
    return parser


def _refuse_secret_argument(parser: argparse.ArgumentParser) -> None:
    """`--secret S`, declared to be refused without a word of S: argparse would otherwise take it
    for `--secret-file S` and print S as the name of a file it cannot read."""
    parser.add_argument("--secret", action=_SecretArgument, help=argparse.SUPPRESS)


class _SecretArgument(argparse.Action):
    @override
    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        raise UsageError(
            "a secret is never a command-line argument (other users of the machine can read those): "
            f"set {SECRET_VARIABLE} or pass --secret-file"
        )


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401 - the `webhooks` extra
    except ImportError:
        raise UsageError(f"the receiver needs the webhooks extra: {EXTRA}") from None
    secrets = receiver_secrets(args.secret_file)
    if args.max_body_bytes < 1:
        raise UsageError("--max-body-bytes must be a positive number of bytes")
    from tap_vobiz.connection import redact
    from tap_vobiz.webhook_capture import CaptureWriter, location_secrets
    from tap_vobiz.webhook_receiver import WebhookReceiver, listening_socket, serve

    hidden = location_secrets(args.capture)
    shown = redact(args.capture, hidden)
    try:
        capture = CaptureWriter(args.capture)
    except ImportError as error:  # fsspec's: "Install s3fs to access S3"
        raise UsageError(f"--capture {shown}: {error}") from None
    except (OSError, ValueError) as error:
        raise UsageError(redact(f"cannot open --capture {shown}: {error}", hidden)) from None
    try:
        sock = listening_socket(args.host, args.port)
    except OSError as error:
        capture.close()
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}") from None
    host, port = sock.getsockname()[:2]
    address = f"[{host}]" if ":" in host else host
    app = WebhookReceiver(capture, secrets, max_body_bytes=args.max_body_bytes)
    # The first line on stdout says where it listens (`--port 0`), for whoever started it.
    print(f"listening on http://{address}:{port}, capturing to {shown}", flush=True)
    serve(app, sock)
    return 0


def _subscribe(args: argparse.Namespace) -> int:
    from tap_vobiz.webhook_subscriptions import subscribe

    return subscribe(args)


def _list(args: argparse.Namespace) -> int:
    from tap_vobiz.webhook_subscriptions import list_subscriptions

    return list_subscriptions(args)


def _unsubscribe(args: argparse.Namespace) -> int:
    from tap_vobiz.webhook_subscriptions import unsubscribe

    return unsubscribe(args)


if __name__ == "__main__":
    sys.exit(main())
