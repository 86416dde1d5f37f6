"""Command line of the local SMS gateway: ``serve`` and the commands working directly on the SQLite file.

Run from the repository root as ``python3 gateway/sms_gateway.py COMMAND ...`` or
``python3 -m gateway COMMAND ...`` (``--help`` lists the commands; ``gateway/README.md`` documents them).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sqlite3
import sys
import threading

from .callbacks import send_inbound
from .protocol import GatewayError
from .reports import ReportDispatcher
from .server import Gateway, GatewayServer
from .settings import RuntimeSettings
from .store import DEFAULT_RETRY_POLICY, FAST_RETRY_POLICY, RetryPolicy, Store

_logger = logging.getLogger("sms_gateway")


def default_db_path() -> str:
    """Return the default SQLite path: ``$SMS_GATEWAY_DB``, else ``$SMS_EXT_STATE_DIR/gateway.sqlite3``."""
    if os.environ.get("SMS_GATEWAY_DB"):
        return os.environ["SMS_GATEWAY_DB"]
    state_dir = os.environ.get("SMS_EXT_STATE_DIR") or os.path.expanduser("~/.local/share/sms_marketing_ext")
    return os.path.join(state_dir, "gateway.sqlite3")


def _print_table(headers: list[str], rows: list[list]) -> None:
    cells = [headers] + [["-" if value is None else str(value) for value in row] for row in rows]
    widths = [max(len(row[index]) for row in cells) for index in range(len(headers))]
    for row in cells:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())


def _country_price(text: str) -> tuple[str, float]:
    code, sep, price = text.partition("=")
    if not sep or len(code.strip()) != 2:
        raise argparse.ArgumentTypeError(f"expected CC=PRICE (e.g. FR=0.045), got {text!r}")
    return code.strip().upper(), float(price)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the HTTP server until SIGTERM/SIGINT."""
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.fast_report_retries:
        retry_policy = FAST_RETRY_POLICY
    else:
        try:
            retry_policy = RetryPolicy(args.report_retry_base, args.report_retry_cap, args.report_max_attempts)
        except ValueError as exc:
            raise SystemExit(f"sms_gateway serve: {exc}") from exc
    store = Store(args.db, retry_policy=retry_policy)
    _logger.info("delivery reports retried %d times over %.0f seconds", retry_policy.max_attempts,
                 retry_policy.window())
    settings = RuntimeSettings(
        fail_ratio=args.fail_ratio,
        accept_then_fail_ratio=args.accept_then_fail_ratio,
        timeout_ratio=args.timeout_ratio,
        timeout_seconds=args.timeout_seconds,
        latency_ms=args.latency_ms,
        credit_cap=args.credit_cap,
        report_delay=args.report_delay,
        delivered_ratio=args.delivered_ratio,
        duplicate_reports=args.duplicate_reports,
        seed=args.seed,
    )
    server = GatewayServer((args.host, args.port), Gateway(store, settings))
    dispatcher = ReportDispatcher(store, settings, workers=args.report_workers)
    dispatcher.start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    serve_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http")
    serve_thread.start()
    host, port = server.server_address[:2]
    shown_host = f"[{host}]" if ":" in host else host
    _logger.info("database %s", os.path.abspath(args.db))
    print(f"listening on http://{shown_host}:{port}", flush=True)
    while not stop.wait(0.5):
        pass
    _logger.info("shutting down")
    server.shutdown()
    serve_thread.join(10)
    server.server_close()
    dispatcher.stop()
    store.close()
    _logger.info("stopped")
    return 0


def cmd_account_create(args: argparse.Namespace) -> int:
    """Create or update an account."""
    senders = [] if args.any_sender else (args.sender or None)
    account, created = Store(args.db).upsert_account(
        args.token,
        args.name,
        args.credits,
        price=args.price,
        country_prices=dict(args.country_price) if args.country_price else None,
        senders=senders,
        webhook_secret=args.webhook_secret,
        inbound_url=args.inbound_url,
    )
    print(f"{'created' if created else 'updated'} account {account['name']!r}")
    print(json.dumps(account, indent=2))
    return 0


def cmd_accounts(args: argparse.Namespace) -> int:
    """List accounts with their balances."""
    accounts = Store(args.db).list_accounts()
    if args.json:
        print(json.dumps(accounts, indent=2))
        return 0
    _print_table(
        ["TOKEN", "NAME", "CREDITS", "PRICE", "COUNTRY PRICES", "SENDERS", "INBOUND URL"],
        [
            [
                account["token"],
                account["name"],
                f"{account['credits']:.6g}",
                account["default_price"],
                ",".join(f"{code}={price}" for code, price in sorted(account["country_prices"].items())) or None,
                ",".join(account["senders"]) or "(any)",
                account["inbound_url"],
            ]
            for account in accounts
        ],
    )
    return 0


def cmd_topup(args: argparse.Namespace) -> int:
    """Add credits to an account."""
    balance = Store(args.db).topup(args.token, args.credits)
    print(f"{args.token}: {balance:.6g} credits")
    return 0


def cmd_messages(args: argparse.Namespace) -> int:
    """List the messages the gateway received, newest first."""
    messages = Store(args.db).list_messages(args.token, args.limit)
    if args.json:
        print(json.dumps(messages, indent=2))
        return 0
    _print_table(
        ["UUID", "NUMBER", "STATE", "PARTS", "CREDITS", "PRESENTED", "REPORT", "RECEIVED AT"],
        [
            [
                message["uuid"],
                message["number"],
                message["state"],
                message["parts"],
                f"{message['credits']:.6g}",
                message["presented_count"],
                f"{message['report_state'] or '?'} ({message['report_status']})" if message["report_status"] else None,
                message["received_at"],
            ]
            for message in messages
        ],
    )
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """Print counts by state, credits charged and duplicate-accept attempts."""
    print(json.dumps(Store(args.db).stats(args.token), indent=2))
    return 0


def cmd_inbound(args: argparse.Namespace) -> int:
    """POST a signed inbound message to the account's inbound URL."""
    outcome = send_inbound(Store(args.db), args.token, args.from_number, args.to, args.body)
    print(json.dumps(outcome, indent=2))
    return 0 if outcome["ok"] else 1


def _add_serve_parser(commands, common: argparse.ArgumentParser) -> None:
    serve = commands.add_parser("serve", parents=[common], help="run the HTTP server")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8070, help="port, 0 = any free port (default: %(default)s)")
    serve.add_argument("--report-delay", type=float, default=2.0, help="seconds before a delivery report is sent")
    serve.add_argument("--delivered-ratio", type=float, default=0.95, help="share of 'delivered' reports")
    serve.add_argument("--duplicate-reports", type=float, default=0.0, help="share of reports posted twice")
    serve.add_argument("--report-retry-base", type=float, default=DEFAULT_RETRY_POLICY.base,
                       help="seconds before the first retry of a failed report POST, doubling (default: %(default)s)")
    serve.add_argument("--report-retry-cap", type=float, default=DEFAULT_RETRY_POLICY.cap,
                       help="longest wait between two report POSTs (default: %(default)s)")
    serve.add_argument("--report-max-attempts", type=_positive_int, default=DEFAULT_RETRY_POLICY.max_attempts,
                       help="report POSTs before giving up (default: %(default)s, about 5 hours)")
    serve.add_argument("--fast-report-retries", action="store_true",
                       help="tests: 5 attempts over 7.5 seconds (overrides the three options above)")
    serve.add_argument("--report-workers", type=_positive_int, default=4, help="threads posting delivery reports")
    serve.add_argument("--fail-ratio", type=float, default=0.0, help="share of /send answered 503 untouched")
    serve.add_argument(
        "--accept-then-fail-ratio", type=float, default=0.0, help="share of /send stored+charged then answered 500"
    )
    serve.add_argument("--timeout-ratio", type=float, default=0.0, help="share of /send answered late")
    serve.add_argument("--timeout-seconds", type=float, default=30.0, help="delay of a late /send answer")
    serve.add_argument("--latency-ms", type=float, default=0.0, help="added to every API call")
    serve.add_argument("--credit-cap", type=float, default=None, help="usable balance never exceeds this")
    serve.add_argument("--seed", type=int, default=None, help="seed of the fault / report random draws")
    serve.add_argument("--verbose", action="store_true", help="log every HTTP request")
    serve.set_defaults(handler=cmd_serve)


def _add_account_create_parser(commands, common: argparse.ArgumentParser) -> None:
    create = commands.add_parser("account-create", parents=[common], help="create or update an account")
    create.add_argument("--token", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--credits", type=float, required=True, help="balance to set")
    create.add_argument("--price", type=float, default=None, help="default credits per SMS part (new: 0.05)")
    create.add_argument("--country-price", type=_country_price, action="append", metavar="CC=PRICE", help="repeatable")
    create.add_argument("--sender", action="append", help="allowed sender id, repeatable (none = any sender)")
    create.add_argument("--any-sender", action="store_true", help="clear the allowed-senders list")
    create.add_argument("--webhook-secret", default=None, help="callback signing secret (new: random)")
    create.add_argument("--inbound-url", default=None, help="where inbound messages are POSTed")
    create.set_defaults(handler=cmd_account_create)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the CLI."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=default_db_path(), help="SQLite file (default: %(default)s)")
    parser = argparse.ArgumentParser(
        prog="sms_gateway", description="Local SMS gateway (IAP-style protocol v1) for sms_marketing_ext."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve_parser(commands, common)
    _add_account_create_parser(commands, common)

    accounts = commands.add_parser("accounts", parents=[common], help="list accounts and balances")
    accounts.add_argument("--json", action="store_true")
    accounts.set_defaults(handler=cmd_accounts)

    topup = commands.add_parser("topup", parents=[common], help="add credits to an account")
    topup.add_argument("--token", required=True)
    topup.add_argument("--credits", type=float, required=True)
    topup.set_defaults(handler=cmd_topup)

    messages = commands.add_parser("messages", parents=[common], help="list received messages, newest first")
    messages.add_argument("--token", default=None)
    messages.add_argument("--limit", type=int, default=50)
    messages.add_argument("--json", action="store_true")
    messages.set_defaults(handler=cmd_messages)

    stats = commands.add_parser("stats", parents=[common], help="counts by state, credits, duplicates, reports")
    stats.add_argument("--token", default=None)
    stats.set_defaults(handler=cmd_stats)

    inbound = commands.add_parser("inbound", parents=[common], help="POST a signed inbound message")
    inbound.add_argument("--from", dest="from_number", required=True, help="sender number, e.g. +33612345678")
    inbound.add_argument("--to", required=True, help="sender id or short number it was sent to")
    inbound.add_argument("--body", required=True)
    inbound.add_argument("--token", default=None, help="account (default: the one allowing --to, or the only one)")
    inbound.set_defaults(handler=cmd_inbound)
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except GatewayError as exc:
        print(f"error: {exc.name}: {exc}", file=sys.stderr)
        return 1
    except (OSError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
