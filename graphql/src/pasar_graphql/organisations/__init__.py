"""Organisations, members and sharing."""
