"""The tool manifest: what security reviews is exactly what the server serves.

    build    the canonical manifest of the catalogue, policy, roles and scopes, and its SHA-256 hash
    scan     flags instruction-like text aimed at the model in titles, descriptions and schemas
    diff     what changed between two manifests, riskiest first
    lock     pin a manifest (atomic write) and check the served one against the pin at start-up
    review   the Markdown review document (docs/MANIFEST.md for the shipped catalogue)
    sources  the shipped catalogue, policy and roles as the plain inputs `build` takes
"""
