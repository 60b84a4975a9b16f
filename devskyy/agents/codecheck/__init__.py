"""codecheck: the analysis and fixing logic behind the scanner, fixer and security agents.

Plain functions and values, usable and testable without the runtime: the issue model
(``issues``), the file walker that honours ``.gitignore`` (``files``), the analyzers
(``ruff``, ``bandit``, ``perf`` AST checks, ``security`` checks), the libcst codemods
(``codemods``), the fix planner (``fixing``) and fixer backups (``backup``). The agents
in ``devskyy.agents`` only translate parameters and results.
"""
