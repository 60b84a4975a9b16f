"""codecheck: the analysis and fixing logic behind the scanner, fixer, security and
verifier agents.

Plain functions and values, usable and testable without the runtime: the issue model
(``issues``), the file walker that honours ``.gitignore`` and skips what it cannot read
(``files``), whose rules judge a tree (``policy``: the project's own ruff/bandit
configuration, or devskyy's), the analyzers (``ruff``, ``bandit``, ``perf`` AST checks,
``security`` checks), the libcst codemods (``codemods``, ``codemods_cst``), the fix
planner (``fixing``, ``edits``), the rescan of planned texts and the settling of what
was fixed (``rescan``, ``settle``), the bounded, secret-masked run records (``records``,
``redaction``, ``linediff``), the project's own check (``verify``) and fixer backups
(``backup``). The agents in ``devskyy.agents`` only translate parameters and results.
"""
