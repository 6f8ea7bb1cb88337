"""Agents: a name, the tools it may call, and how it runs; each owned by one user."""
