"""The audit log: append-only rows of privileged actions and executions, and their queries."""
