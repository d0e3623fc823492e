"""People: personal accounts with roles and tenants, logins, sessions, CSRF (M05, M10)."""
