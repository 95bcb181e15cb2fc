"""The pull-through cache (`proxy:` in the config): mirrored repositories answered from the cache
or an upstream registry, beside the registry's own. `install` wires it into the app's handlers;
`warm` pre-fills it (`dockyard mirror warm`, registry/proxy/cli.py)."""
