"""One Dockerfile read against one build context: its stage graph, the path map of every stage
and what each RUN was found to do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tasks.lib.gate.commands import AppBuild, Generate, RunAnalyzer
from tasks.lib.gate.context import BuildContext
from tasks.lib.gate.copies import CopyReader
from tasks.lib.gate.dockerfile import Dockerfile
from tasks.lib.gate.paths import PathMap
from tasks.lib.gate.stages import StageGraph, walk


@dataclass
class DockerfileModel:
    """Everything the policies look at."""

    graph: StageGraph
    paths: PathMap
    generates: list[Generate] = field(default_factory=list)
    builds: list[AppBuild] = field(default_factory=list)
    warnings: list[tuple[int, str]] = field(default_factory=list)  # (stage, message)
    unfollowed: list[tuple[int, str]] = field(default_factory=list)  # (stage, message)


def map_dockerfile(
    df: Dockerfile, build_args: Mapping[str, str], context: BuildContext, target: str | None
) -> DockerfileModel:
    """Walk every instruction of every stage, in file order, into a :class:`DockerfileModel`."""
    graph = StageGraph(df, build_args, target)
    paths = PathMap(graph, context)
    model = DockerfileModel(graph, paths)
    reader = CopyReader(df, context)
    analyzer = RunAnalyzer(paths, df.path)
    for stage, ins, scope in walk(df, build_args, graph.parents):
        if ins.keyword in ("COPY", "ADD"):
            read = reader.copies(stage, ins, scope)
            for copy in read.copies:
                paths.add(copy)
            model.warnings.extend((stage.index, w) for w in read.warnings)
        elif ins.keyword == "RUN":
            mounts = reader.mounts(stage, ins, scope)
            model.warnings.extend((stage.index, w) for w in mounts.warnings)
            result = analyzer.analyze(stage.index, ins, scope, mounts.copies)
            model.generates.extend(result.generates)
            model.builds.extend(result.builds)
            model.warnings.extend((stage.index, w) for w in result.warnings)
            model.unfollowed.extend((stage.index, w) for w in result.unfollowed)
    return model
