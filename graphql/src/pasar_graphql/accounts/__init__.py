"""Accounts: sign-up, log-in, API keys and the current caller."""
