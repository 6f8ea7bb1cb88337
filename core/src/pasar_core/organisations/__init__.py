"""Organisations and their members: `store` (memberships as the accounts code reads them),
`members` (what admins change)."""
