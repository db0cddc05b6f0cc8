"""Database access: table definitions, engines for primary and replica, migrations."""
