"""One module per command: orchestration only (hooks, checks, which duplicity commands run).

Command lines are built in ``cfbackup.duplicity.commands``; processes run in ``cfbackup.execute``.
"""
