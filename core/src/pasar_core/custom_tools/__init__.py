"""Custom tools: tools a user registers through `POST /tools`, private to their owner.

- `ids`: `namespace:name` and pinned `namespace:name@version`; who may use a namespace;
- `definition`: the registration body (pydantic), and the checks beyond its shape;
- `schemas`: JSON Schema rules for user schemas (metaschema, local refs only, size, RE2);
- `store`: tables, versions, namespace claims and the change counter other processes read;
- `python_tools`, `http_tools`: the `ToolSpec.run` of each kind (the sandbox queue; HTTP behind
  the SSRF guard);
- `overlay`: an owner's registry, the installed one plus their tools (and sandboxed plugins).
"""
