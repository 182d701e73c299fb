"""Glance v2: images (list, show, delete), advanced from queued through saving to their fate by
polls."""

from __future__ import annotations

from typing import Any

from support.emulator.common import not_found, now

_IMAGE_PRIVATE = ("polls", "_server", "_server_status")


def _image_view(image: dict) -> dict:
    return {k: v for k, v in image.items() if k not in _IMAGE_PRIVATE}


def handle(h: Any, method, path, query, body, mv):
    emu = h.emu
    if path == "/image":
        return (
            300,
            {
                "versions": [
                    {
                        "id": "v2.16",
                        "status": "CURRENT",
                        "links": [{"rel": "self", "href": f"{h.base}/image/v2/"}],
                    }
                ]
            },
            {},
        )
    parts = path.split("/")[2:]
    if parts[:2] != ["v2", "images"]:
        raise not_found(path)
    if len(parts) == 2:
        images = sorted(emu.images.values(), key=lambda i: i["created_at"])
        if "name" in query:
            images = [i for i in images if i["name"] == query["name"]]
        return (
            200,
            {
                "images": [_image_view(i) for i in images],
                "schema": "/v2/schemas/images",
                "first": "/v2/images",
            },
            {},
        )
    image = emu.images.get(parts[2])
    if image is None:
        raise not_found(f"Image {parts[2]}")
    if method == "DELETE":
        del emu.images[image["id"]]
        return 204, None, {}
    if method == "GET" and image["status"] in ("queued", "saving"):
        image["polls"] += 1
        if image["status"] == "queued":
            image["status"] = "saving"
        elif image["polls"] > emu.image_polls and emu.image_fate != "stuck":
            image["status"] = "active" if emu.image_fate == "active" else "killed"
            image["size"] = 123456789 if image["status"] == "active" else None
            image["updated_at"] = now()
            owner = emu.servers.get(image["_server"])
            if owner is not None:
                owner["task_state"] = None
    return 200, _image_view(image), {}
