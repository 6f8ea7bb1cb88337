"""MCP (Model Context Protocol), with the official SDK: tools of MCP servers as a tool family
of the catalogue (the client), and pasar's tools and agents offered to MCP clients (the server)."""
