"""The services of the OpenStack emulator (``support/openstack_emulator.py``), one module each.

Each service module has ``handle(h, method, path, query, body, mv)`` returning ``(status,
payload, headers)`` or raising :class:`common.HTTPError`; ``h`` is the request handler, ``h.emu``
the emulator's state (held under its lock), ``h.base`` the URL the client used.
"""
