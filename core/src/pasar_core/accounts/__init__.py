"""Users, passwords, access tokens and API keys."""
