"""agents: the built-in agents (scanner, fixer, security, content, commerce…).

Each is a ``devskyy.BaseAgent`` subclass. Agents may use runtime, core, adapters and
model; nothing below imports them statically (the registry imports them by path).
"""
