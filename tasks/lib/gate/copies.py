"""Turning ``COPY``/``ADD`` instructions and ``RUN --mount=type=bind`` flags into
:class:`~tasks.lib.gate.paths.Copy` events: words expanded, sources matched in the build
context (wildcards, symlinks followed as BuildKit follows a source), ``--from`` resolved to a
stage or an image, ``--exclude`` compiled, destinations made absolute against ``WORKDIR``.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field, replace

from tasks.lib.errors import ConfigError, DockerfileError
from tasks.lib.gate.context import BuildContext, context_rel, has_glob
from tasks.lib.gate.dockerfile import Dockerfile, Instruction, Stage, mount_options
from tasks.lib.gate.dockerignore import IgnoreRules
from tasks.lib.gate.expand import expand
from tasks.lib.gate.paths import Copy, absolute
from tasks.lib.gate.stages import Scope

_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://")


@dataclass
class CopyRead:
    """The events of one instruction and what looked wrong on the way."""

    copies: list[Copy] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)  # ADD of a URL or a git repository


class CopyReader:
    """Reads the copies of a Dockerfile's instructions against one build context."""

    def __init__(self, df: Dockerfile, context: BuildContext) -> None:
        self.df = df
        self.context = context

    def _expand(self, word: str, scope: Scope, line: int) -> str:
        try:
            return expand(word, scope.vars(), escape=self.df.escape)
        except ConfigError as exc:
            raise DockerfileError(self.df.path, line, exc.message) from None

    def _missing(self, rel: str) -> str:
        """Why context path ``rel`` cannot be copied."""
        if not self.context.on_disk(rel):
            return "is not in the context"
        culprit = self.context.culprit(rel)
        if culprit is not None:
            return (
                f"is excluded by {self.context.ignore.source}:{culprit.line} "
                f"pattern '{culprit.text}'"
            )
        return "is a symlink whose target is not in the context"

    def copies(self, stage: Stage, ins: Instruction, scope: Scope) -> CopyRead:
        """The copies of ``COPY``/``ADD`` instruction ``ins``."""
        out = CopyRead()
        if ins.json_form:
            words = list(ins.args)
        else:
            words = [self._expand(w, scope, ins.line) for w in ins.args]
        if len(words) < 2:
            return out
        sources, shown_dest = words[:-1], words[-1]
        heredocs = {h.name: h for h in ins.heredocs}
        dest = absolute(posixpath.join(scope.workdir, shown_dest))
        into_dir = shown_dest.endswith("/") or len(sources) > 1 or any(map(has_glob, sources))
        from_ref = ins.flag("from")
        from_stage: int | None = None
        image: str | None = None
        if from_ref is not None:
            ref = self._expand(from_ref, scope, ins.line)
            found = self.df.stage(ref)
            if found is None:
                image = ref
            else:
                from_stage = found.index
        patterns = [self._expand(v, scope, ins.line) for v in ins.flag_values("exclude") if v]
        excludes = IgnoreRules.of(patterns, f"{self.df.path}:{ins.line} --exclude")
        template = Copy(
            stage=stage.index,
            line=ins.line,
            keyword=ins.keyword,
            source="stage" if from_stage is not None else "image" if image else "context",
            src="",
            followed=None,
            src_kind="unknown",
            dest=dest,
            shown_src="",
            shown_dest=dest + ("/" if shown_dest.endswith("/") and dest != "/" else ""),
            into_dir=into_dir,
            from_stage=from_stage,
            image=image,
            from_label=self.df.stages[from_stage].label if from_stage is not None else image,
            excludes=excludes or None,
        )
        for source in sources:
            marker = re.match(r"^\d*<<-?(.*)$", source)
            if marker and not ins.json_form:
                name = marker.group(1).replace('"', "").replace("'", "")
                if name in heredocs:
                    out.copies.append(
                        replace(
                            template,
                            source="heredoc",
                            src=name,
                            shown_src=f"<<{name}",
                            src_kind="file",
                            heredoc=heredocs[name].body,
                        )
                    )
                    continue
            if _URL_RE.match(source) or source.startswith("git@"):
                out.remote.append(source)
                continue
            if template.source != "context":
                src = absolute(source)
                out.copies.append(replace(template, src=src, shown_src=source))
                continue
            self._context_sources(template, source, ins, out)
        return out

    def _context_sources(
        self, template: Copy, source: str, ins: Instruction, out: CopyRead
    ) -> None:
        rel = context_rel(source)
        where = f"{self.df.path}:{ins.line}: {ins.keyword} source {source}"
        if has_glob(rel):
            matches = self.context.glob(rel)
            if not matches:
                out.warnings.append(
                    f"{where} matches nothing in the context; the build will fail there"
                )
        else:
            matches = [rel]
        for match in matches:
            followed = self.context.resolve(match)
            kind = self.context.kind(followed) if followed is not None else None
            if followed is None or kind is None:
                out.warnings.append(f"{where} {self._missing(match)}; the build will fail there")
                continue
            out.copies.append(
                replace(template, src=match, followed=followed, src_kind=kind, shown_src=source)
            )

    def mounts(self, stage: Stage, ins: Instruction, scope: Scope) -> CopyRead:
        """The bind mounts of RUN ``ins``, as copies only that RUN sees.

        ``type=bind`` (the default type) with ``source``/``src`` (default: the context root,
        or the root of ``from``), ``target``/``dst``/``destination`` (relative to the
        WORKDIR) and ``from`` (a stage, or an image). Other types bring nothing.
        """
        out = CopyRead()
        for value in ins.flag_values("mount"):
            if not value:
                continue
            raw = mount_options(value)
            if self._expand(raw.get("type", "bind"), scope, ins.line).lower() != "bind":
                continue
            wanted = ("target", "dst", "destination", "source", "src", "from")
            opts = {k: self._expand(raw[k], scope, ins.line) for k in wanted if k in raw}
            shown_dest = opts.get("target") or opts.get("dst") or opts.get("destination")
            if not shown_dest:
                continue  # BuildKit refuses a mount without a target
            dest = absolute(posixpath.join(scope.workdir, shown_dest))
            source = opts.get("source") or opts.get("src")
            ref = opts.get("from")
            keyword = "RUN --mount=type=bind"
            template = Copy(
                stage=stage.index,
                line=ins.line,
                keyword=keyword,
                source="context",
                src="",
                followed=None,
                src_kind="unknown",
                dest=dest,
                shown_src=source or ".",
                shown_dest=dest,
                into_dir=False,
            )
            if ref:
                found = self.df.stage(ref)
                label = found.label if found is not None else ref
                out.copies.append(
                    replace(
                        template,
                        keyword=f"{keyword},from={label}",
                        source="stage" if found is not None else "image",
                        from_stage=found.index if found is not None else None,
                        image=ref if found is None else None,
                        src=absolute(source or "/"),
                        shown_src=source or "/",
                    )
                )
                continue
            rel = context_rel(source or ".")
            followed = self.context.resolve(rel)
            kind = self.context.kind(followed) if followed is not None else None
            if followed is None or kind is None:
                out.warnings.append(
                    f"{self.df.path}:{ins.line}: RUN --mount source {source} "
                    f"{self._missing(rel)}; the build will fail there"
                )
                out.copies.append(replace(template, src=rel))  # still hides the image there
                continue
            out.copies.append(replace(template, src=rel, followed=followed, src_kind=kind))
        return out
