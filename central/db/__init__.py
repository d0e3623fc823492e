"""The centre's store: SQLAlchemy Core tables, engines, and Alembic migrations."""
