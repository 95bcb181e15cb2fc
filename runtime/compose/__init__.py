"""Compose files: loading, interpolation, validation and the project model (`dockyard compose`)."""
