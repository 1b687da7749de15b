"""The pair cache's sqlite3 file: its schema, its setup and its failures.

This module owns what :mod:`skemd._pair_cache` needs of the file itself: the
schema (a ``pairs`` table keyed by configuration and pair, a ``size`` table
that triggers keep, the application id and schema version in the header),
setting up a connection (WAL journal, the schema created in an empty file,
any other file refused as :class:`Corrupt`) and telling a corrupt store from
a locked one.
"""

import sqlite3

#: The schema's version: in the file's header, and in every configuration key.
SCHEMA_VERSION = 1
#: Seconds to wait for another process's write before giving up on the store.
BUSY_TIMEOUT = 60.0
_APPLICATION_ID = 0x736B6D64  # "skmd", in the sqlite header
_SCHEMA = (
    "CREATE TABLE pairs (config BLOB NOT NULL, pair BLOB NOT NULL, "
    "value REAL NOT NULL, checksum BLOB NOT NULL, used INTEGER NOT NULL, "
    "PRIMARY KEY (config, pair)) WITHOUT ROWID",
    "CREATE INDEX pairs_by_use ON pairs (used)",
    "CREATE TABLE size (entries INTEGER NOT NULL)",
    "INSERT INTO size VALUES (0)",
    "CREATE TRIGGER pair_added AFTER INSERT ON pairs "
    "BEGIN UPDATE size SET entries = entries + 1; END",
    "CREATE TRIGGER pair_removed AFTER DELETE ON pairs "
    "BEGIN UPDATE size SET entries = entries - 1; END",
    f"PRAGMA application_id = {_APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)


class Corrupt(Exception):
    """The store holds something it did not write.

    Examples
    --------
    >>> from skemd._pair_store import Corrupt, is_corrupt
    >>> is_corrupt(Corrupt("a stored distance does not match its checksum"))
    True
    """


def set_up(db):
    """Set up a new connection: WAL journal, and a store of this version.

    Parameters
    ----------
    db : sqlite3.Connection
        A connection in autocommit mode (``isolation_level=None``).

    Raises
    ------
    Corrupt
        If the file is not an empty file nor a pair cache of this version.

    Examples
    --------
    >>> import sqlite3
    >>> from skemd._pair_store import set_up
    >>> db = sqlite3.connect(":memory:", isolation_level=None)
    >>> set_up(db)
    >>> db.execute("SELECT entries FROM size").fetchone()
    (0,)
    >>> other = sqlite3.connect(":memory:", isolation_level=None)
    >>> _ = other.execute("CREATE TABLE notes (text)")
    >>> set_up(other)
    Traceback (most recent call last):
    ...
    skemd._pair_store.Corrupt: not a skemd pair cache of version 1
    """
    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    if _version(db) == (_APPLICATION_ID, SCHEMA_VERSION):
        return
    db.execute("BEGIN IMMEDIATE")  # so that one process creates it
    try:
        version = _version(db)
        empty = not db.execute("SELECT * FROM sqlite_master").fetchone()
        if version == (0, 0) and empty:
            for statement in _SCHEMA:
                db.execute(statement)
        elif version != (_APPLICATION_ID, SCHEMA_VERSION):
            raise Corrupt(f"not a skemd pair cache of version {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _version(db):
    return tuple(
        db.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("application_id", "user_version")
    )


def is_corrupt(error):
    """Whether ``error`` says the store holds what it cannot have written.

    Parameters
    ----------
    error : Exception
        What using the store raised.

    Returns
    -------
    corrupt : bool
        True for :class:`Corrupt`, a missing table or column, or a file
        sqlite finds malformed; False for a lock, or an error of the system.

    Examples
    --------
    >>> import sqlite3
    >>> from skemd._pair_store import is_corrupt
    >>> is_corrupt(sqlite3.OperationalError("no such table: pairs"))
    True
    >>> is_corrupt(sqlite3.OperationalError("database is locked"))
    False
    """
    if isinstance(error, sqlite3.OperationalError):
        return str(error).startswith("no such")  # a table or column is gone
    return isinstance(error, (Corrupt, sqlite3.DatabaseError))


def is_locked(error):
    """Whether ``error`` is another process holding the store past the timeout.

    Parameters
    ----------
    error : Exception
        What using the store raised.

    Returns
    -------
    locked : bool
        Whether it says the database is locked or busy.

    Examples
    --------
    >>> import sqlite3
    >>> from skemd._pair_store import is_locked
    >>> is_locked(sqlite3.OperationalError("database is locked"))
    True
    """
    return "locked" in str(error) or "busy" in str(error)
