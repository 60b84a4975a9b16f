"""runtime: wiring and loops.

Reconciler, registry, orchestrator and workflow executor, security manager, daemon.
Builds on core (decisions) and adapters (I/O); must not import api, cli or agents.
"""
