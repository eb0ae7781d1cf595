"""PostgreSQL: the pool, migrations, and queries per aggregate that return models."""
