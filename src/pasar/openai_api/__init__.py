"""An OpenAI-compatible surface for pasar agents: `POST /v1/chat/completions`, `GET /v1/models`."""
