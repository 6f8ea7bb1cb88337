"""Executions: run agents, read and cancel runs, and subscribe to their events."""
