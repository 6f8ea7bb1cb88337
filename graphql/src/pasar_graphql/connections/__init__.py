"""OAuth connections: the scope compiler for chosen actions, the caller's provider grants, and
disconnecting a provider."""
