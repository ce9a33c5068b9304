"""Schema migrations for the system DB and the market DB (sqlite-utils ``Migrations``).

Each migration is registered once, in order, and never edited after release: a later change is
a new migration. ``apply`` runs the pending ones, each in its own transaction together with
its record in ``_sqlite_migrations``, so an older file is upgraded in place. A file that has
migrations this version does not know (written by a newer AutoTrader) is refused, not guessed
at. To add one: write ``@system_migrations(name="m00N_what")`` below the others.
"""

from __future__ import annotations

import logging

import sqlite_utils
from sqlite_utils.migrations import Migrations

logger = logging.getLogger(__name__)

system_migrations = Migrations("autotrader-system")
market_migrations = Migrations("autotrader-market")


class SchemaTooNewError(RuntimeError):
    pass


def schema_version(db: sqlite_utils.Database, migrations: Migrations) -> int:
    """How many of ``migrations`` are applied (the schema version)."""
    return len(migrations.applied(db))


def apply(db: sqlite_utils.Database, migrations: Migrations,
          stop_before: str | None = None) -> int:
    """Apply pending migrations; return the resulting schema version."""
    known = {m.name for m in migrations._migrations}
    unknown = [m.name for m in migrations.applied(db) if m.name not in known]
    if unknown:
        raise SchemaTooNewError(
            f"{migrations.name}: the database has migrations this AutoTrader does not know "
            f"({', '.join(unknown)}); it was written by a newer version, so upgrade AutoTrader"
        )
    pending = migrations.pending(db)
    if pending:
        logger.info("%s: applying migrations %s", migrations.name, [m.name for m in pending])
    migrations.apply(db, stop_before=stop_before)
    return schema_version(db, migrations)


# --- system DB -------------------------------------------------------------------------------
@system_migrations(name="m001_initial")
def _system_initial(db: sqlite_utils.Database) -> None:
    for stmt in (
        """CREATE TABLE algorithms (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            plugin TEXT NOT NULL,
            ticker TEXT NOT NULL,
            initial_capital REAL NOT NULL CHECK (initial_capital > 0),
            params TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'stopped', 'error', 'deleted')),
            error TEXT,
            error_at TEXT,
            created_at TEXT NOT NULL,
            stopped_at TEXT
        )""",
        """CREATE TABLE orders (
            id INTEGER PRIMARY KEY,
            client_order_id TEXT NOT NULL UNIQUE,
            algo_id INTEGER REFERENCES algorithms(id),
            ticker TEXT NOT NULL,
            side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
            qty INTEGER NOT NULL CHECK (qty > 0),
            status TEXT NOT NULL,
            broker_order_id TEXT,
            filled_qty INTEGER NOT NULL DEFAULT 0,
            filled_avg_price REAL,
            reason TEXT,
            minute TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX orders_status ON orders(status)",
        "CREATE INDEX orders_algo ON orders(algo_id)",
        """CREATE TABLE transactions (
            id INTEGER PRIMARY KEY,
            algo_id INTEGER NOT NULL REFERENCES algorithms(id),
            order_id INTEGER REFERENCES orders(id),
            fill_id TEXT UNIQUE,
            ticker TEXT NOT NULL,
            type TEXT NOT NULL CHECK (type IN ('buy', 'sell')),
            shares INTEGER NOT NULL CHECK (shares > 0),
            price REAL NOT NULL CHECK (price > 0),
            commission REAL NOT NULL DEFAULT 0,
            timestamp TEXT NOT NULL
        )""",
        "CREATE INDEX transactions_algo ON transactions(algo_id, id)",
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ):
        db.execute(stmt)


# --- market DB -------------------------------------------------------------------------------
@market_migrations(name="m001_bars")
def _market_bars(db: sqlite_utils.Database) -> None:
    # WITHOUT ROWID keyed (ticker, epoch seconds): "last n before t" is one range scan of the
    # primary key at any table size, and a ticker's rows sit together on disk.
    db.execute(
        """CREATE TABLE bars (
            ticker TEXT NOT NULL,
            ts INTEGER NOT NULL,
            o REAL NOT NULL, h REAL NOT NULL, l REAL NOT NULL, c REAL NOT NULL,
            v INTEGER NOT NULL DEFAULT 0,
            n INTEGER,
            vw REAL,
            PRIMARY KEY (ticker, ts)
        ) WITHOUT ROWID"""
    )


# --- system DB, continued ----------------------------------------------------------------
@system_migrations(name="m002_sim_broker")
def _system_sim_broker(db: sqlite_utils.Database) -> None:
    # orders.parent: for netted opposite orders on one ticker, each algorithm's own order row
    # points at the one broker order sent for the net (client order id); crossed_qty is the
    # part of it matched internally against the other side.
    for stmt in (
        "ALTER TABLE orders ADD COLUMN parent TEXT",
        "ALTER TABLE orders ADD COLUMN crossed_qty INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX orders_parent ON orders(parent)",
        """CREATE TABLE sim_account (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            cash REAL NOT NULL,
            starting_cash REAL NOT NULL,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE sim_positions (
            ticker TEXT PRIMARY KEY,
            qty INTEGER NOT NULL
        )""",
        """CREATE TABLE sim_orders (
            client_order_id TEXT PRIMARY KEY,
            broker_order_id TEXT NOT NULL UNIQUE,
            ticker TEXT NOT NULL,
            side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
            qty INTEGER NOT NULL CHECK (qty > 0),
            status TEXT NOT NULL,
            filled_qty INTEGER NOT NULL DEFAULT 0,
            filled_avg_price REAL,
            reason TEXT NOT NULL DEFAULT '',
            created_ts INTEGER NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX sim_orders_status ON sim_orders(status)",
    ):
        db.execute(stmt)


# --- corporate actions (splits, dividends, mergers...) -----------------------------------
@system_migrations(name="m003_corporate_actions")
def _system_corporate_actions(db: sqlite_utils.Database) -> None:
    # corporate_actions: what the broker announced for the tickers in use (Alpaca's id), and
    # when the engine applied it (set in the same transaction as its algo_events rows, so a
    # kill mid-apply leaves neither). algo_events: what an action did to one algorithm's
    # sub-account: a split (whole-share change, new average cost), the cash paid in lieu of
    # a fraction, a cash dividend, or another action that paused it. The seed's buy/sell
    # transactions table is left as it is (plugins read it).
    for stmt in (
        """CREATE TABLE corporate_actions (
            id TEXT PRIMARY KEY,
            ticker TEXT NOT NULL,
            kind TEXT NOT NULL,
            ex_date TEXT NOT NULL,
            record_date TEXT,
            payable_date TEXT,
            old_rate REAL,
            new_rate REAL,
            rate REAL,
            detail TEXT NOT NULL DEFAULT '{}',
            seen_at TEXT NOT NULL,
            applied_at TEXT
        )""",
        "CREATE INDEX corporate_actions_due ON corporate_actions(applied_at, ex_date)",
        """CREATE TABLE algo_events (
            id INTEGER PRIMARY KEY,
            algo_id INTEGER NOT NULL REFERENCES algorithms(id),
            action_id TEXT NOT NULL REFERENCES corporate_actions(id),
            ticker TEXT NOT NULL,
            type TEXT NOT NULL
                CHECK (type IN ('split', 'cash_in_lieu', 'dividend', 'action')),
            shares INTEGER NOT NULL DEFAULT 0,
            fraction REAL NOT NULL DEFAULT 0,
            cash REAL NOT NULL DEFAULT 0,
            price REAL,
            avg_cost REAL,
            old_rate REAL,
            new_rate REAL,
            shares_before INTEGER,
            shares_after INTEGER,
            note TEXT NOT NULL DEFAULT '',
            after_tx_id INTEGER NOT NULL DEFAULT 0,
            timestamp TEXT NOT NULL,
            UNIQUE (algo_id, action_id, type)
        )""",
        "CREATE INDEX algo_events_algo ON algo_events(algo_id, id)",
        # The simulated broker's side (demo, tests): splits it was told to schedule, and
        # whether its own positions were already split.
        """CREATE TABLE sim_corporate_actions (
            id TEXT PRIMARY KEY,
            ticker TEXT NOT NULL,
            kind TEXT NOT NULL,
            ex_date TEXT NOT NULL,
            old_rate REAL,
            new_rate REAL,
            rate REAL,
            detail TEXT NOT NULL DEFAULT '{}',
            settled_at TEXT
        )""",
    ):
        db.execute(stmt)


@market_migrations(name="m002_applied_splits")
def _market_applied_splits(db: sqlite_utils.Database) -> None:
    # A split applied to the stored bars: every bar before ex_ts was scaled by ``factor``
    # (prices x factor, volume / factor) in the transaction that wrote this row; bars of an
    # earlier minute stored later (a backfill) are scaled as they are inserted.
    db.execute(
        """CREATE TABLE applied_splits (
            action_id TEXT PRIMARY KEY,
            ticker TEXT NOT NULL,
            ex_ts INTEGER NOT NULL,
            factor REAL NOT NULL CHECK (factor > 0),
            applied_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX applied_splits_ticker ON applied_splits(ticker, ex_ts)")


@system_migrations(name="m004_open_orders_index")
def _system_open_orders_index(db: sqlite_utils.Database) -> None:
    # Open orders are read twice a tick; without this, every read scans all of ``orders``
    # (a month of trading is tens of thousands of rows). The query in ``SystemStore`` names
    # the same literal statuses, which lets SQLite use this partial index.
    db.execute(
        "CREATE INDEX orders_open ON orders(id) WHERE status NOT IN "
        "('canceled', 'done_for_day', 'expired', 'filled', 'rejected')"
    )


@system_migrations(name="m005_performance")
def _system_performance(db: sqlite_utils.Database) -> None:
    # One row per session day and algorithm (algo_id 0: the whole account), written after the
    # close (or at the next start for a missed day: taken = 'startup'). Names are copied so
    # the history reads the same after an algorithm is deleted.
    db.execute(
        """CREATE TABLE performance (
            day TEXT NOT NULL,
            algo_id INTEGER NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            ticker TEXT NOT NULL DEFAULT '',
            value REAL NOT NULL,
            pnl REAL NOT NULL,
            position REAL NOT NULL DEFAULT 0,
            cash REAL NOT NULL,
            trades INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT '',
            taken TEXT NOT NULL CHECK (taken IN ('close', 'startup')),
            taken_at TEXT NOT NULL,
            PRIMARY KEY (algo_id, day)
        )"""
    )
    db.execute("CREATE INDEX performance_day ON performance(day)")
