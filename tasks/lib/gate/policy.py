"""The service's schema policy applied to a :class:`~tasks.lib.gate.model.DockerfileModel`.

``generate``: a ``prisma generate`` in a stage the image needs reads a file that is the shared
schema when it runs (nothing removed, moved, overwritten or changed in a way the gate cannot
follow since it was copied), and the final image holds what that generate wrote, taken from
its stage or a stage after it. ``copy``: the final image holds the shared schema, carried
through the stage that builds the app (the last stage the image needs that runs a build), which
has it when the build runs. ``none``: reported, never refused.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from tasks.lib.gate.commands import Generate
from tasks.lib.gate.model import DockerfileModel
from tasks.lib.gate.paths import Entry, Op
from tasks.lib.gate.report import Evidence


@dataclass(frozen=True)
class SchemaRef:
    """The shared schema in the build context: its path, and the file it is (itself, or the
    target of the symlink it is, resolved inside the context as BuildKit resolves it)."""

    rel: str
    real: str
    link: str | None = None  # the symlink's text, when it is one

    def matches(self, entry: Entry | None) -> bool:
        """Whether ``entry`` (read through symlinks) is the shared schema's content."""
        return (
            entry is not None
            and entry.origin == "context"
            and entry.kind == "file"
            and entry.context_path == self.real
        )

    @property
    def folder(self) -> str:
        return posixpath.dirname(self.rel) or "."


@dataclass
class Outcome:
    """Evidence, problems and warnings, each one plain line."""

    evidence: list[Evidence] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add_evidence(self, items: list[Evidence]) -> None:
        for item in items:
            if item not in self.evidence:
                self.evidence.append(item)


def _hops(entry: Entry) -> list[Evidence]:
    return [Evidence(h.stage, h.line, h.text) for h in entry.hops]


def _origin(entry: Entry) -> str:
    """Where a non-schema entry comes from, in words."""
    if entry.origin == "context":
        return entry.context_path or "the build context"
    if entry.origin == "heredoc":
        return "an inline heredoc"
    if entry.origin == "image":
        return f"the image {entry.image}"
    if entry.origin == "generated" and entry.op is not None:
        return f"what `{entry.op.text}` generates (line {entry.op.line})"
    if entry.origin == "made":
        return "an empty folder made by mkdir"
    return "somewhere the gate cannot tell"


def _changed(entry: Entry) -> str | None:
    """How a RUN took the file away, or ``None`` when it did not."""
    op = entry.op
    if op is None:
        return None
    if entry.origin == "removed":
        verb = "moves it away" if op.action == "move" else "removes it"
        return f"the RUN at line {op.line} {verb} (`{op.text}`)"
    if entry.origin == "written":
        return f"the RUN at line {op.line} overwrites it (`{op.text}`)"
    if entry.origin == "unfollowable":
        return (
            f"the RUN at line {op.line} runs `{op.text}` on {op.paths[0]}, "
            "which the gate cannot follow"
        )
    return None


def _occupies(entry: Entry | None) -> bool:
    return entry is not None and (entry.present or _changed(entry) is not None)


def _generated_by(entry: Entry | None, op: Op) -> bool:
    return entry is not None and entry.origin == "generated" and entry.op is op


def _last_line(entry: Entry, stage: str, default: int) -> int:
    lines = [h.line for h in entry.hops if h.stage == stage]
    return lines[-1] if lines else default


class Policies:
    """Applies one policy to one model."""

    def __init__(self, model: DockerfileModel, ref: SchemaRef, df_path: str) -> None:
        self.model = model
        self.graph = model.graph
        self.paths = model.paths
        self.ref = ref
        self.df_path = df_path
        self.out = Outcome()

    def where(self, line: int) -> str:
        return f"{self.df_path}:{line}"

    # generate

    def generate(self) -> Outcome:
        graph, out = self.graph, self.out
        final = graph.final
        good: list[tuple[Generate, list[Evidence]]] = []
        bad: list[str] = []
        stray: list[Generate] = []
        for gen in self.model.generates:
            if gen.stage not in graph.required_set:
                stray.append(gen)
                continue
            judged = self._judge(gen)
            if isinstance(judged, str):
                bad.append(judged)
            else:
                good.append((gen, judged))
        client_problem: str | None = None
        for gen, items in good:
            reached = self._client(gen)
            if isinstance(reached, str):
                client_problem = client_problem or reached
                continue
            out.add_evidence(items)
            out.add_evidence(self._dependency(gen.stage))
            if gen.stage != final.index:  # in its own stage, the client is there by itself
                out.add_evidence(reached)
            if gen.masked:
                via = f" via {gen.via}" if gen.via else ""
                out.warnings.append(
                    f"{self.where(gen.line)}: a failing {gen.shown}{via} would not fail the "
                    f"build: {gen.masked}; let its failure fail the RUN"
                )
            if self.ref.link is not None:
                out.warnings.append(self._link_note(gen.read))
            return out
        if client_problem is not None:
            out.problems.append(client_problem)
            return out
        if bad:
            out.problems.extend(bad)
            return out
        names = ", ".join(s.label for s in graph.required)
        if stray:
            gen = stray[0]
            label = graph.label(gen.stage)
            out.problems.append(
                f"{self.where(gen.line)}: prisma generate runs in stage '{label}', but the final "
                f"stage '{final.label}' does not depend on it; build the final stage FROM "
                f"{label} or COPY --from={label} the generated client"
            )
            return out
        where = ""
        for stage in graph.required:
            spots = self._schema_spots(stage.index)
            if spots:
                where = f" (the schema is at {spots[0]} in stage '{stage.label}')"
                break
        unfollowed = [m for s, m in self.model.unfollowed if s in graph.required_set]
        note = f"; not followed: {unfollowed[0]}" if unfollowed else ""
        out.problems.append(
            f"{self.where(final.line)}: no RUN in the stages the final image depends on "
            f"({names}) runs prisma generate{where}; add RUN npx prisma generate "
            f"--schema=<that path>{note}"
        )
        return out

    def _link_note(self, entry: Entry | None) -> str:
        where = f" at {entry.path}" if entry is not None else ""
        return (
            f"{self.ref.rel} is a symlink to {self.ref.link} ({self.ref.real}); "
            f"its target reaches the image{where}, so the image is built from that file"
        )

    def _judge(self, gen: Generate) -> list[Evidence] | str:
        """Evidence when ``gen`` reads the shared schema, else the one-line problem."""
        ref = self.ref
        via = f" via {gen.via}" if gen.via else ""
        head = f"{self.where(gen.line)}: {gen.shown}{via}"
        if gen.target is None:
            return f"{head}: {gen.unknown}; pass --schema a path"
        target = gen.target
        entry = gen.read
        if entry is None or (entry.origin == "missing" and not entry.links):
            brings = "COPY or bind mount of this RUN" if gen.mounted else "COPY"
            return (
                f"{head} reads {target} but no {brings} puts {ref.rel} there; "
                f"copy it with COPY {ref.folder} {posixpath.dirname(target)}/"
            )
        if entry.origin == "missing":
            chain = ", ".join(entry.links)
            link = f"{ref.rel} is a symlink to {ref.link}: " if ref.link else ""
            return (
                f"{head} reads {target}, a symlink ({chain}) to {entry.path}, which nothing in "
                f"the image provides; {link}copy the file it points to as well, or copy the "
                "file itself instead of the link"
            )
        changed = _changed(entry)
        if changed is not None:
            return (
                f"{head} reads {target}, but {changed}; run prisma generate before that, "
                f"or copy {ref.rel} again after it"
            )
        if not ref.matches(entry):
            return (
                f"{head} reads {target}, which comes from {_origin(entry)}, not {ref.rel}; "
                f"point --schema at the copy of {ref.rel}"
            )
        label = self.graph.label(gen.stage)
        items = _hops(entry)
        items.append(
            Evidence(label, gen.line, f"RUN {gen.shown}{via} reads {target} (from {ref.rel})")
        )
        return items

    def _dependency(self, stage: int) -> list[Evidence]:
        """How the final stage depends on ``stage``."""
        items: list[Evidence] = []
        for user, used, line in self.graph.chain(stage):
            how = "FROM" if self.graph.df.stages[user].line == line else "COPY --from/RUN --mount"
            user_label, used_label = self.graph.label(user), self.graph.label(used)
            items.append(
                Evidence(user_label, line, f"stage {user_label} depends on {used_label} ({how})")
            )
        return items

    def _client(self, gen: Generate) -> list[Evidence] | str:
        """Evidence that the final image holds what ``gen`` generated, taken from its stage
        or a later one; else the problem. Without a known output folder: nothing to check."""
        final = self.graph.final
        label = self.graph.label(gen.stage)
        problem: str | None = None
        if gen.lost and not gen.produced:
            folder, mount = gen.lost[0]
            return (
                f"{self.where(gen.line)}: {gen.shown} writes its client to {folder}, inside the "
                f"bind mount at {mount}, which the image does not keep; mount only the schema "
                "file, or COPY the schema instead"
            )
        for op in gen.produced:
            folder = op.paths[0]
            entry = self.paths.lookup(final.index, folder)
            if _generated_by(entry, op):
                return [self._client_evidence(gen, folder, entry)]
            blocker, shown = entry, folder
            if not _occupies(blocker):
                shown = posixpath.dirname(folder)
                blocker = self.paths.lookup(final.index, shown)
            if blocker is not None and _occupies(blocker):
                changed = _changed(blocker)
                if changed is not None:
                    problem = problem or (
                        f"{self.where(gen.line)}: the client {gen.shown} writes to {folder} "
                        f"does not reach the final image: {changed}"
                    )
                    continue
                if gen.stage not in blocker.stages:
                    line = _last_line(blocker, final.label, final.line)
                    problem = problem or (
                        f"{self.where(line)}: the final stage '{final.label}' takes {shown} from "
                        f"{self._carrier(blocker)}, not from stage '{label}' where prisma "
                        f"generate runs (line {gen.line}); COPY --from={label} {shown} instead"
                    )
                    continue
            for spot in self.paths.locations(final.index, ("op", op)):
                found = self.paths.lookup(final.index, spot)
                if _generated_by(found, op):
                    return [self._client_evidence(gen, spot, found)]
            problem = problem or (
                f"{self.where(gen.line)}: the client {gen.shown} writes to {folder} "
                f"(stage '{label}') does not reach the final stage '{final.label}'; "
                f"COPY --from={label} {posixpath.dirname(folder)} into it"
            )
        return problem if problem is not None else []

    def _client_evidence(self, gen: Generate, spot: str, entry: Entry | None) -> Evidence:
        final = self.graph.final
        line = _last_line(entry, final.label, final.line) if entry is not None else final.line
        return Evidence(
            final.label,
            line,
            f"final stage {final.label} holds the client generated at line {gen.line} "
            f"({self.graph.label(gen.stage)}) at {spot}",
        )

    # copy

    def _schema_spots(self, stage: int, upto: int | None = None) -> list[str]:
        """Image paths in ``stage`` where reading gives the shared schema."""
        keys = dict.fromkeys([self.ref.rel, self.ref.real])
        spots: list[str] = []
        for key in keys:
            for spot in self.paths.locations(stage, ("context", key)):
                if spot not in spots and self.ref.matches(self.paths.read(stage, spot, upto)):
                    spots.append(spot)
        return spots

    def copy(self) -> Outcome:
        graph, out, ref = self.graph, self.out, self.ref
        final = graph.final
        spots = self._schema_spots(final.index)
        names = ", ".join(s.label for s in graph.required)
        if not spots:
            out.problems.append(self._copy_missing(names))
            return out
        entries = [self.paths.read(final.index, spot) for spot in spots]
        reached = [e for e in entries if e is not None]
        builds = [b for b in self.model.builds if b.stage in graph.required_set]
        if builds:
            last = builds[-1]
            builder = graph.label(last.stage)
            if not self._schema_spots(last.stage, last.position):
                out.problems.append(
                    f"{self.where(last.line)}: stage '{builder}' builds the app (`{last.shown}`) "
                    f"without {ref.rel}; COPY it into '{builder}' before that line"
                )
                return out
            if last.stage != final.index and not any(last.stage in e.stages for e in reached):
                entry = reached[0]
                line = _last_line(entry, final.label, final.line)
                out.problems.append(
                    f"{self.where(line)}: the final stage '{final.label}' takes {ref.rel} from "
                    f"{self._carrier(entry)}, not through stage '{builder}' that builds the app "
                    f"(line {last.line}); take it from '{builder}' (COPY --from={builder}) instead"
                )
                return out
        out.add_evidence(_hops(reached[0]))
        if ref.link is not None:
            out.warnings.append(self._link_note(reached[0]))
        return out

    def _carrier(self, entry: Entry) -> str:
        """Where the final stage got ``entry`` from: a stage, or the build context."""
        if len(entry.stages) > 1:
            return f"stage '{self.graph.label(entry.stages[-2])}'"
        if entry.origin == "context":
            return f"the build context ({entry.context_path})"
        return _origin(entry)

    def _copy_missing(self, names: str) -> str:
        graph, ref = self.graph, self.ref
        final = graph.final
        for stage in graph.required:
            for key in dict.fromkeys([ref.rel, ref.real]):
                for spot in self.paths.locations(stage.index, ("context", key)):
                    entry = self.paths.read(stage.index, spot)
                    if entry is not None and entry.origin == "missing" and entry.links:
                        return (
                            f"{self.where(final.line)}: {ref.rel} is a symlink to {ref.link}; in "
                            f"stage '{stage.label}' {spot} points to {entry.path}, which nothing "
                            "in the image provides; copy the file it points to as well, or copy "
                            "the file itself instead of the link"
                        )
                    changed = _changed(entry) if entry is not None else None
                    if changed is not None:
                        return (
                            f"{self.where(entry.op.line if entry and entry.op else final.line)}: "
                            f"{ref.rel} is copied to {spot} in stage '{stage.label}', but "
                            f"{changed}; the final image would not hold it"
                        )
        holding = [s for s in graph.required if self._schema_spots(s.index)]
        if holding:
            stage = holding[-1]
            spot = self._schema_spots(stage.index)[0]
            return (
                f"{self.where(final.line)}: {ref.rel} reaches stage '{stage.label}' ({spot}) but "
                f"not the final stage '{final.label}'; carry it through the stage that builds "
                f"the app into the final stage (COPY --from=...)"
            )
        elsewhere = [
            s
            for s in graph.df.stages
            if s.index not in graph.required_set and self._schema_spots(s.index)
        ]
        if elsewhere:
            stage = elsewhere[0]
            return (
                f"{self.where(stage.line)}: {ref.rel} is copied only into stage '{stage.label}', "
                f"which the final stage '{final.label}' does not depend on; COPY it in one of: "
                f"{names}"
            )
        return (
            f"{self.where(final.line)}: no COPY in the stages the final image depends on "
            f"({names}) brings {ref.rel}; add COPY {ref.folder} ./{ref.folder}/"
        )
