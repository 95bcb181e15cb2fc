"""The web UI: server-rendered pages over the same `Store` and access rules as the API.

Kept import-light: `registry.config` imports `registry.ui.config` for the typed `ui` section.
"""
