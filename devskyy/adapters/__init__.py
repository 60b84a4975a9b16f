"""adapters: the outside world behind small Protocols with in-memory twins.

Manifest files, the SQL store, the clock, the file watcher. No decisions live here;
must not import core, runtime or entry points.
"""
