"""The tool catalogue: what installed plugins offer."""
