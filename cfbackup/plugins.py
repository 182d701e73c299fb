"""The plugin manager: built-ins and third-party plugins load the same way, lazily.

Built-in plugins are found through the ``cfbackup`` entry-point group like any other, so
``cfbackup plugins`` lists them side by side. ``CFBACKUP_LOAD_PLUGINS`` (comma-separated names,
empty for none) restricts what loads; ``CFBACKUP_TRACE_HOOKS=1`` logs every hook call.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os

import pluggy

from cfbackup import hookspecs

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "cfbackup"
_VERSIONS: dict[str, str | None] = {}


def make_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """A plugin manager with the hook specifications and (by default) every installed plugin."""
    pm = pluggy.PluginManager("cfbackup")
    pm.add_hookspecs(hookspecs)
    if load_entry_points:
        _load_entry_points(pm)
    if os.environ.get("CFBACKUP_TRACE_HOOKS"):
        pm.trace.root.setwriter(lambda message: log.debug("hook: %s", message.rstrip()))
        pm.enable_tracing()
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allowed = os.environ.get("CFBACKUP_LOAD_PLUGINS")
    names = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if names is not None and ep.name not in names:
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as error:  # a broken plugin is reported, not a traceback
            log.warning(
                "plugin %s could not be loaded (%s: %s): reinstall or remove it",
                ep.name,
                type(error).__name__,
                error,
            )
            continue
        pm.register(plugin, name=ep.name)
        _VERSIONS[ep.name] = ep.dist.version if ep.dist else None


def plugin_names(pm: pluggy.PluginManager) -> list[str]:
    return sorted(name for name, _ in pm.list_name_plugin() if name is not None)


def hooks_for_profile(pm: pluggy.PluginManager, disabled: list[str] | tuple[str, ...]):
    """The hook relay restricted to the plugins a profile has not switched off."""
    remove = [pm.get_plugin(n) for n in disabled if pm.get_plugin(n) is not None]
    if not remove:
        return pm.hook
    return _SubsetRelay(pm, remove)


class _SubsetRelay:
    """``pm.hook``-like object calling each hook without the removed plugins."""

    def __init__(self, pm: pluggy.PluginManager, remove: list[object]):
        self._pm = pm
        self._remove = remove

    def __getattr__(self, name: str):
        return self._pm.subset_hook_caller(name, remove_plugins=self._remove)


def describe_plugins(pm: pluggy.PluginManager) -> list[dict]:
    """Each loaded plugin with its distribution version and implemented hooks."""
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: str(item[0])):
        if name is None or plugin is None:
            continue
        rows.append(
            {
                "name": name,
                "version": _VERSIONS.get(name),
                "module": getattr(plugin, "__name__", type(plugin).__name__),
                "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or ()),
            }
        )
    return rows
