"""The store tests run on SQLite and on a real PostgreSQL server (tests/support/stores.py)."""

from stores import postgres_template, postgres_url, session, store, store_url  # noqa: F401
