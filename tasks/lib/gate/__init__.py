"""The schema gate: proves from a Dockerfile that an image is built from the shared schema.

Modules, one job each: :mod:`~tasks.lib.gate.dockerfile` (the parser),
:mod:`~tasks.lib.gate.expand` (ARG/ENV expansion), :mod:`~tasks.lib.gate.stages` (the stage
graph), :mod:`~tasks.lib.gate.dockerignore` and :mod:`~tasks.lib.gate.context` (what the build
context sends), :mod:`~tasks.lib.gate.copies` and :mod:`~tasks.lib.gate.paths` (mapping
context paths to image paths through COPY, WORKDIR and RUN file operations),
:mod:`~tasks.lib.gate.shell`, :mod:`~tasks.lib.gate.runners`, :mod:`~tasks.lib.gate.prisma`,
:mod:`~tasks.lib.gate.fileops` and :mod:`~tasks.lib.gate.commands` (what a RUN does),
:mod:`~tasks.lib.gate.model` (all of it for one Dockerfile), :mod:`~tasks.lib.gate.policy`
(generate/copy/none verdicts), :mod:`~tasks.lib.gate.schema` (the schema file),
:mod:`~tasks.lib.gate.checker` (one image, end to end) and :mod:`~tasks.lib.gate.inputs`
(the build's inputs, for a content-addressed cache).
"""

from tasks.lib.gate.checker import check
from tasks.lib.gate.inputs import BuildInputs, ContextSource, build_inputs, context_files
from tasks.lib.gate.report import POLICIES, Evidence, GateInput, GateReport, Policy, Verdict
from tasks.lib.gate.schema import schema_sha256

__all__ = [
    "POLICIES",
    "BuildInputs",
    "ContextSource",
    "Evidence",
    "GateInput",
    "GateReport",
    "Policy",
    "Verdict",
    "build_inputs",
    "check",
    "context_files",
    "schema_sha256",
]
