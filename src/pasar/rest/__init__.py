"""REST surface: thin handlers over pasar_core services, with an OpenAPI document."""
