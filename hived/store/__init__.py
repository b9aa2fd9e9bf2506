"""The only place with SQL: tables (models.py), statements per domain (tasks.py, agents.py,
workflows.py, tokens.py), the database and its group-commit writer (db.py), migrations, and the lock
that makes one hived the owner of a database (ownership.py)."""
