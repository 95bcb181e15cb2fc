"""The audit log: one JSON line per push, delete, mount, login and denied request (who, what, from
where), on stderr or appended to a file; independent of the webhooks (docs/audit.md).

`config` owns the `audit` section, `sink` writes the lines, `record` decides what a finished
request says, and `middleware` watches the requests.
"""
