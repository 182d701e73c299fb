"""``cfbackup images prune``: keep the newest N park images per server.

Park images are recognised by their ``cfbackup_parked_server`` property. The image a parked
server needs (named in its record) is never deleted, nor one still being saved.
"""

from __future__ import annotations

from cfbackup.config.model import Config, Profile

from . import records
from .cloud import cloud_errors, connect
from .park import Progress


def prune_images(
    config: Config,
    profile: Profile,
    *,
    keep: int,
    server: str | None = None,
    dry_run: bool = False,
    progress: Progress = print,
    conn=None,
) -> dict[str, list]:
    """Delete park images beyond the newest ``keep`` active ones per server; never the image a
    parked server needs, never one still being saved."""
    conn = conn or connect(profile)
    protected = {
        r["image"]["id"]
        for r in records.list_all(config, [profile])
        if r.get("state") == "parked" and r.get("image")
    }
    with cloud_errors("listing images"):
        images = [
            i for i in conn.image.images() if (i.properties or {}).get("cfbackup_parked_server")
        ]
    by_server: dict[str, list] = {}
    for image in images:
        owner = image.properties["cfbackup_parked_server"]
        if server is None or owner == server:
            by_server.setdefault(owner, []).append(image)
    kept: list[str] = []
    deleted: list[str] = []
    for owner, owned in sorted(by_server.items()):
        owned.sort(key=lambda i: (i.created_at or "", i.name or ""), reverse=True)
        active = [i for i in owned if i.status == "active"]
        keep_ids = {i.id for i in active[:keep]} | protected
        for image in owned:
            if image.id in keep_ids or image.status in ("queued", "saving", "importing"):
                kept.append(image.id)
                continue
            progress(
                f"{'would delete' if dry_run else 'deleting'} image {image.name} "
                f"({image.id}, {image.status}) of {owner}"
            )
            if not dry_run:
                with cloud_errors(f"deleting image {image.id}"):
                    conn.image.delete_image(image, ignore_missing=True)
            deleted.append(image.id)
    return {"kept": kept, "deleted": deleted}
