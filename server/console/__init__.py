"""The web console at /console/ (Starlette routes, Jinja2 templates, static CSS/JS; no build step)."""
