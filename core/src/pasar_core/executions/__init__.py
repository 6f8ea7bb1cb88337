"""Agent runs: execution records, the runner, executors, live events, webhooks."""
