"""Django's PostgreSQL backend whose connection pool lends only working connections (see `base`)."""
