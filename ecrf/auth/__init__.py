"""Users, roles, API tokens, passwords, login controls and the one permission table."""
