"""The OCI protocol both sides speak: digests, media types, descriptors, references, platforms, manifest
parsing and a registry client. It knows neither the server (`registry/`) nor the runtime (`runtime/`)."""
