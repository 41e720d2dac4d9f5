"""App images moved to the staging tag. Only the default inside ``${GATEWAY_IMAGE:-...}``
changes: the variable is kept so a deployment can still pin a staging image (beware: the same
``.env`` next to both files sets it for both)."""

from __future__ import annotations

from collections.abc import Iterable

from tasks.lib.compose.syntax import VAR_WITH_DEFAULT


def _retag(ref: str, app_images: Iterable[str], tag: str) -> str | None:
    name = ref.split("@", 1)[0]
    colon, slash = name.rfind(":"), name.rfind("/")
    repo = name[:colon] if colon > slash else name
    if repo.rsplit("/", 1)[-1] not in set(app_images):
        return None
    return f"{repo}:{tag}"


def staging_image(image: str, app_images: Iterable[str], tag: str) -> str:
    """``isopen/meeshy-web:v1`` -> ``isopen/meeshy-web:staging``; other images as given."""
    match = VAR_WITH_DEFAULT.match(image)
    if match:
        new = _retag(match.group("default"), app_images, tag)
        if new is None:
            return image
        return image[: match.start("default")] + new + image[match.end("default") :]
    return _retag(image, app_images, tag) or image
