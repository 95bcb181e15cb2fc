"""The `dockyard` command: the server's and the runtime's subcommands under one name."""
