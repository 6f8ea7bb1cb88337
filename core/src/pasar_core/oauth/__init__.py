"""OAuth for tools: the scope compiler, consent links and callbacks, encrypted token custody with
refresh, per-agent enforcement at dispatch, and the user's connections.

- `scopes`: actions -> the least covering scope set, its risk, and diffs.
- `clients`: a provider spec + this server's client settings -> endpoint URLs.
- `consent`: `auth_url`s with a single-use hashed state and PKCE; the callback.
- `tokens`: sealing, storing, refreshing (single-flight per grant), revoking, key rotation.
- `enforcement`: `credentials_for_tool`, called before every tool run.
"""
