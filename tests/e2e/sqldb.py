"""The databases behind hato's [sql] lookup tables in the end-to-end tests:
an SQLite file, or a private PostgreSQL cluster (postgres.py), each loaded
with the example schema shipped in docs/sql/schema.sql and asked with the
queries of docs/sql/hato-sql.conf - so what the docs show is what is
tested."""
import os
import sqlite3

from conftest import REPO
from postgres import Postgres
from ports import free_port

DOCS_SQL = os.path.join(REPO, "docs", "sql")


def doc_queries():
    """The *_query keys of docs/sql/hato-sql.conf."""
    out = {}
    with open(os.path.join(DOCS_SQL, "hato-sql.conf")) as f:
        for line in f:
            key, sep, value = line.partition(" = ")
            if sep and key.endswith("_query"):
                out[key] = value.strip()
    return out


def doc_schema():
    with open(os.path.join(DOCS_SQL, "schema.sql")) as f:
        return f.read()


class SqliteDB:
    """An SQLite file readable by hatod's user; down() holds an exclusive
    lock (a writer that never ends), which is how an SQLite database
    becomes unavailable to readers."""

    backend = "sqlite"

    def __init__(self, root):
        self.path = os.path.join(root, "mail.sqlite")
        self.database = self.path
        self.lock = None

    def start(self):
        if not os.path.exists(self.path):
            with sqlite3.connect(self.path) as c:
                c.executescript(doc_schema())
            os.chmod(self.path, 0o644)
        return self

    def execute(self, sql):
        c = sqlite3.connect(self.path, timeout=30)
        try:
            c.executescript(sql)
            c.commit()
        finally:
            c.close()

    def down(self):
        self.lock = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.lock.execute("BEGIN EXCLUSIVE")

    def up(self):
        self.lock.execute("ROLLBACK")
        self.lock.close()
        self.lock = None

    def stop(self):
        if self.lock is not None:
            self.up()


class PgsqlDB:
    """A private PostgreSQL cluster with the database "mail"; down() stops
    the server (pg_ctl stop -m fast: every connection is cut)."""

    backend = "pgsql"

    def __init__(self, root):
        self.pg = Postgres(root, free_port())
        self.database = self.pg.conninfo

    def start(self):
        self.pg.init().start()
        self.pg.psql("CREATE DATABASE mail", db="postgres")
        self.pg.psql(doc_schema())
        return self

    def execute(self, sql):
        self.pg.psql(sql)

    def down(self):
        self.pg.stop()

    def up(self):
        self.pg.start()

    def stop(self):
        self.pg.stop()


def make_db(backend, root):
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o755)
    return (SqliteDB if backend == "sqlite" else PgsqlDB)(root).start()


def sql_section(db, **over):
    """The [sql] section for db: the documented queries, then over."""
    keys = {"backend": db.backend, "database": db.database, "cache_ttl": "1s", "timeout": "2s"}
    keys.update(doc_queries())
    keys.update(over)
    return "[sql]\n" + "".join("%s = %s\n" % kv for kv in keys.items() if kv[1] is not None)


def add_domain(db, domain):
    db.execute("INSERT INTO domain (domain) VALUES ('%s')" % domain)


def add_mailbox(db, address):
    local, domain = address.split("@")
    db.execute("INSERT INTO mailbox (username, local_part, domain) VALUES ('%s', '%s', '%s')"
               % (address, local, domain))


def add_alias(db, address, goto):
    db.execute("INSERT INTO alias (address, goto, domain) VALUES ('%s', '%s', '%s')"
               % (address, goto, address.split("@")[1]))
