"""model: frozen data (manifests, plans, run and security records).

Values only: no I/O, no clock, no imports from any other devskyy layer.
"""
