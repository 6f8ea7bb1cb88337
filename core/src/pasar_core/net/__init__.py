"""Outbound HTTP that cannot be turned against the server's own network (SSRF guard, pinned
connections, guarded redirects, byte and time caps). Used by the web tools and by webhooks."""
