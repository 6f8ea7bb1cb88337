"""Docker sandboxes for custom tools and untrusted plugins (used by sandbox workers only).

- `images`: build `sandbox_images/<name>` offline, tagged by content hash;
- `policy`: the hardening of every container, and the check that the daemon applied it;
- `limits`, `settings`: what a workload may use; the operator's maxima and pool settings;
- `workloads`: what runs in a container (a Python custom tool; a sandboxed plugin next);
- `container`: one attached container speaking the runner's JSON-lines protocol;
- `egress`, `allow_hosts`: the worker's egress proxy for workloads with allow_hosts (reached
  through a relay on the container's loopback), and the API side's checks of those hosts;
- `pool`: warm containers per workload under a per-worker cap;
- `client`: `SandboxClient`, the API a sandbox worker calls;
- `daemon`, `owners`: reaching the daemon; which process owns a container;
- `local_daemon`, `testing`: a private dockerd and the daemon for a test session.
"""
