"""Untrusted plugin packages, installed into a sandbox image and never imported by pasar.

- `layer`: the wheel and its dependencies installed with pip into a directory on the host
  (`--target`, never the server's environment), next to a copy of pasar_core and pluggy;
- `image`: that directory as an image layer on top of the python sandbox image (offline);
- `manifest`: the plugin's families as read inside a container, checked like any plugin's;
- `install`: the whole path (used by `pasar plugins install --sandboxed` and sandbox workers);
- `store`: the `sandboxed_plugins` table and the plugin's catalogue rows;
- `registry`: proxy tools whose `run` goes through the sandbox queue, for the overlay;
- `oauth`: the per-call access token narrowed to one tool's scopes.
"""
