"""Agents: their stored configuration and the service that owns them."""
