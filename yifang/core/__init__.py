"""Settings, database engine and sessions, migrations, accounts, jurisdiction and audit."""
