"""Everything that knows duplicity: its command lines, environment, machine log and exit codes.

``commands`` builds argv tuples (pure functions of a profile), ``environment`` puts secrets and
credentials where duplicity reads them, ``machinelog`` parses ``--log-fd`` output and ``run``
executes it and turns failures into cfbackup errors.
"""
