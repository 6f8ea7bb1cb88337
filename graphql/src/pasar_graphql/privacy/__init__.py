"""Data protection: export, erasure, the organisation's retention policy."""
