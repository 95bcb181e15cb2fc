"""Governance of repositories: retention rules (applied by GC), immutable tags and storage quotas.

Each rule set is chosen by a repository glob (`team/*`, `**` for any depth); the first policy whose
glob matches a repository is the one that applies to it.
"""
