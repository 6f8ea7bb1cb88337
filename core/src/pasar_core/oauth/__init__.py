"""OAuth for tools: the scope compiler, consent links and callbacks, encrypted token custody with
refresh, per-agent enforcement at dispatch, and the user's connections.

- `scopes`: actions -> the least covering scope set, its risk, and diffs.
- `clients`: a provider spec + this server's client settings -> endpoint URLs.
- `consent`: `auth_url`s (pasar's start page) with a single-use hashed state and PKCE.
- `start`: the start page's checks: the link's user signs in, the browser gets a bound secret.
- `callback`: the callback, only in that browser; `identity`: the account that consented.
- `tokens`: sealing, storing, refreshing (single-flight per grant), revoking, key rotation.
- `enforcement`: `credentials_for_tool`, called before every tool run.
"""
