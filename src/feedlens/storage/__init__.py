"""Persistence: SQLAlchemy tables and repositories, Alembic migrations, the content-addressed blob store."""
