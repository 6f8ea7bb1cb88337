"""Data protection: per-organisation retention, a user's data export and account erasure."""
