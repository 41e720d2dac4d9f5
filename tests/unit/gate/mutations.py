"""Edits of Meeshy-shaped Dockerfiles, ignore files and schema layout for the mutation suite
(issue 13): each one either breaks the schema's use or is an equivalent form."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tasks.lib.gate import Policy

EXAMPLE = Path(__file__).resolve().parents[3] / "example"
SCHEMA = "packages/shared/prisma/schema.prisma"
GATEWAY = "services/gateway/Dockerfile"
TRANSLATOR = "services/translator/Dockerfile"
WEB = "apps/web/Dockerfile"
DOCKERFILES = {"gateway": GATEWAY, "translator": TRANSLATOR, "web": WEB}
POLICIES: dict[str, Policy] = {"gateway": "generate", "translator": "generate", "web": "copy"}

#: Meeshy's web image: deps installs, builder takes the packages from deps and builds, the final
#: stage takes the built app and the shared package from builder (copy policy).
WEB_DOCKERFILE = """\
ARG PACKAGE_MANAGER=bun

FROM busybox AS base
COPY tools/fake-bin/ /usr/local/bin/
WORKDIR /app

FROM base AS deps
ARG PACKAGE_MANAGER
COPY packages/shared/ ./packages/shared/
COPY apps/web/package.json ./apps/web/
RUN --mount=type=cache,target=/root/.bun/install/cache \\
    ${PACKAGE_MANAGER} install

FROM base AS builder
ARG PACKAGE_MANAGER
COPY --from=deps /app/packages ./packages
COPY apps/web/ ./apps/web/
RUN cd packages/shared && ${PACKAGE_MANAGER} run build
RUN cd apps/web && ${PACKAGE_MANAGER} run build

FROM base AS runner
ARG VERSION=1.0.0
LABEL org.opencontainers.image.title="meeshy-web" \\
      org.opencontainers.image.version="${VERSION}"
COPY --from=builder /app/apps/web/dist ./dist
COPY --from=builder /app/packages/shared ./packages/shared
EXPOSE 3100
CMD ["cat", "dist/manifest.txt"]
"""

#: The gateway's generate, as the example (and Meeshy) writes it.
GENERATE = (
    "RUN npx prisma generate --generator client \\\n"
    "      --schema=./packages/shared/prisma/schema.prisma"
)


@dataclass(frozen=True)
class Replace:
    """Replace the first ``old`` in file ``path`` by ``new``."""

    path: str
    old: str
    new: str


@dataclass(frozen=True)
class Write:
    """Write ``text`` to ``path`` (appending with ``append``)."""

    path: str
    text: str
    append: bool = False


@dataclass(frozen=True)
class Symlink:
    """Make ``path`` a symlink to ``target`` (replacing what is there)."""

    path: str
    target: str


Edit = Replace | Write | Symlink


@dataclass(frozen=True)
class Mutation:
    """One edit of the monorepo and what the gate must say about it."""

    id: str
    service: Literal["gateway", "translator", "web"]
    edits: tuple[Edit, ...]
    kind: Literal["breaking", "equivalent"]
    reason: str  # fail: the problem; pass: the deciding evidence ("L<line> <stage>: <text>")
    warning: str | None = None  # a warning the gate must also give
    build_args: dict[str, str] = field(default_factory=dict)
    issue: int = 0  # the issue-13 item it belongs to

    @property
    def verdict(self) -> str:
        return "fail" if self.kind == "breaking" else "pass"


def apply(root: Path, mutation: Mutation) -> None:
    """Prepare ``root`` (a copy of the example with Meeshy's web Dockerfile) and edit it."""
    for edit in mutation.edits:
        path = root / edit.path
        if isinstance(edit, Replace):
            text = path.read_text(encoding="utf-8")
            assert edit.old in text, f"{mutation.id}: {edit.old!r} not in {edit.path}"
            path.write_text(text.replace(edit.old, edit.new, 1), encoding="utf-8")
        elif isinstance(edit, Write):
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a" if edit.append else "w", encoding="utf-8") as fh:
                fh.write(edit.text)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink() or path.exists():
                path.unlink()
            os.symlink(edit.target, path)


def meeshy_copy(dest: Path) -> Path:
    """A copy of the example monorepo with Meeshy's web Dockerfile."""
    shutil.copytree(EXAMPLE, dest, symlinks=True)
    (dest / WEB).write_text(WEB_DOCKERFILE, encoding="utf-8")
    return dest
