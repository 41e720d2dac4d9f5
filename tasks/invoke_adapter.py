"""The adapter between Invoke and the core: flags declared once as typed records, config
resolved once into Settings, and every error, signal and closed pipe turned into one line and
an exit code (the table is in :mod:`tasks.lib.errors`).

A task is written as::

    @cli_task(BuildFlags, name="gateway")
    def gateway(c: Context, flags: BuildFlags) -> None:
        ...

and Invoke sees one keyword parameter per declared flag, with the field's help text, so the
flag list, the help and the typed object cannot drift apart (mypy checks ``flags.x``).
"""

from __future__ import annotations

import copy
import inspect
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar, dataclass_transform

from invoke import Context, Exit, Task, task
from invoke.parser.argument import Argument

from tasks.lib.errors import ConfigError, Interrupted, OutputClosed, TaskError

if TYPE_CHECKING:  # imported where used: `inv --list` only needs the flags and cli_task
    from tasks.lib.config import Settings
    from tasks.lib.engine import EngineTarget
    from tasks.lib.output import Output

PROJECT_DIR = Path(__file__).resolve().parent.parent


class _Flag:
    """One declared flag: its default and its ``--help`` text (see :func:`flag`)."""

    __slots__ = ("default", "help")

    def __init__(self, default: Any, help: str) -> None:
        self.default = default
        self.help = help

    @property
    def iterable(self) -> bool:
        return isinstance(self.default, list)

    def initial(self) -> Any:
        return list(self.default) if self.iterable else self.default


def flag(*, default: Any, help: str) -> Any:
    """A CLI flag of a :class:`Flags` class: its default and its ``--help`` text. A list
    default makes a repeatable flag (``--service a --service b``)."""
    return _Flag(default, help)


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(flag,))
class Flags:
    """Base of every task's flags: a frozen, keyword-only record whose fields are declared with
    :func:`flag` (mypy reads it as a dataclass through ``dataclass_transform``).

    Not a real dataclass on purpose: ``tasks.py`` declares ~20 flag classes and Invoke loads
    them all on every run, ``inv --list`` included; making a dataclass costs ~0.3 ms (it
    compiles five methods), these cost a dictionary."""

    _declared: ClassVar[dict[str, _Flag]] = {}
    not_on_cli: ClassVar[frozenset[str]] = frozenset()
    """Inherited flags this task does not take: left out of its command line and ``--help``,
    their defaults in the record (``release`` never skips the gate, never ``--push``es)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        merged: dict[str, _Flag] = {}
        for base in reversed(cls.__mro__[1:]):  # as dataclasses order inherited fields
            merged.update(base.__dict__.get("_declared", {}))
        for name in inspect.get_annotations(cls):
            declared = cls.__dict__.get(name)
            if not isinstance(declared, _Flag):
                raise TypeError(f"{cls.__name__}.{name}: declare it as flag(default=..., help=...)")
            merged[name] = declared
            delattr(cls, name)
        cls._declared = merged

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(self._declared)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no flag {', '.join(sorted(unknown))}")
        for name, declared in self._declared.items():
            value = values[name] if name in values else declared.initial()
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name}")

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._declared}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash((type(self), tuple(repr(v) for v in self.as_dict().values())))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items())
        return f"{type(self).__name__}({inner})"


FlagsT = TypeVar("FlagsT", bound=Flags)


# -- flags shared by many tasks: declared once, composed by inheritance ---------------------------


class RootFlags(Flags):
    root: str = flag(
        default="", help="the Meeshy monorepo (default: config meeshy.root, or $MEESHY_ROOT)"
    )


class RepoFlags(RootFlags):
    registry: str = flag(default="", help="image namespace (default: isopen, or $DOCKER_REGISTRY)")


class EngineFlags(Flags):
    context: str = flag(
        default="",
        help="Docker context to talk to (default: $DOCKER_HOST / $DOCKER_CONTEXT / current)",
    )


REGISTRY_URL_HELP = (
    "push to this registry (host:port) instead of the images' own, as "
    "<host:port>/<repository>:<tag>; the engine that pushes resolves and contacts it: with "
    "--context/DOCKER_HOST on a server, `localhost:5000` is the server's own"
)


class RegistryUrlFlags(Flags):
    """``--registry-url`` for the push tasks (images.push, staging.push, release): its help says
    which engine resolves the address; a dry run shows it with
    :func:`tasks.lib.engine.pusher_note`."""

    registry_url: str = flag(default="", help=REGISTRY_URL_HELP)


class JsonFlags(Flags):
    json: bool = flag(default=False, help="machine-readable output on stdout")


class DryRunFlags(Flags):
    dry_run: bool = flag(default=False, help="print exactly what would be done, change nothing")


class ServiceFlags(Flags):
    service: list[str] = flag(default=[], help="only this service (repeatable; default: every one)")


class ImageFlags(RepoFlags, EngineFlags, JsonFlags):
    """The registry's images on an engine: build.*, images.*, staging.tag/push."""


def _refuse(message: str, hint: str) -> NoReturn:
    """A flag Invoke is parsing is refused: one line and exit 2 (no task has started)."""
    err = ConfigError(message, hint=hint)
    raise Exit(f"ERROR: {err.line()}", code=err.exit_code) from None


class _TypedArgument(Argument):
    """A flag whose value Invoke converts with its type (``int`` for ``--port-offset``): a value
    that does not convert is one line and exit 2, not Invoke's ValueError traceback."""

    def set_value(self, value: Any, cast: bool = True) -> None:
        flag = "--" + max(self.names, key=len)
        if value == "" and self.kind is str:
            # `--registry "$REG"` with REG unset: the flag was given, with nothing. Taking the
            # default would build or tag prod's names (isopen) where the script meant its own.
            _refuse(f"{flag} is given an empty value", f"give {flag} a value, or leave it out")
        try:
            super().set_value(value, cast)
        except ValueError:
            kind = "a whole number" if self.kind is int else f"a {self.kind.__name__}"
            _refuse(f"{flag} {value!r} is not {kind}", f"e.g. {flag} {self.default}")

    def __deepcopy__(self, memo: dict[int, Any]) -> _TypedArgument:
        # Invoke's parser deep-copies every task's arguments on each run; an argument's
        # values are replaced, never mutated (a list flag makes a new list), so a shallow
        # copy is a full one, at a fraction of the cost.
        return copy.copy(self)


class FlagTask(Task[Any]):
    """The Task :func:`cli_task` makes: its flags are :class:`_TypedArgument`, declared by
    ``flags_cls`` (read by :func:`first_engine_context` before Invoke parses)."""

    flags_cls: type[Flags] | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> FlagTask:
        # Invoke deep-copies every task when it loads the namespace (Collection.from_module);
        # a task is not changed after it is made, except its call counter: a shallow copy
        # with its own containers is the same thing, at a fraction of the cost.
        new = copy.copy(self)
        new.help = dict(self.help)
        new.iterable = list(self.iterable)
        new.incrementable = list(self.incrementable)
        new.positional = list(self.positional)
        new.pre = list(self.pre)
        new.post = list(self.post)
        return new

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        args = super().get_arguments(ignore_unknown_help)
        for arg in args:
            # The same object, typed: _TypedArgument adds methods only (no state), so this
            # is Invoke's own argument, without building every flag twice on every run.
            arg.__class__ = _TypedArgument
        return args


def cli_task(
    flags_cls: type[FlagsT], *, name: str | None = None
) -> Callable[[Callable[[Context, FlagsT], None]], Task[Any]]:
    """Make ``fn(c, flags)`` an Invoke task whose flags are the fields of ``flags_cls``."""

    declared = {n: f for n, f in flags_cls._declared.items() if n not in flags_cls.not_on_cli}

    def decorate(fn: Callable[[Context, FlagsT], None]) -> Task[Any]:
        # Invoke reads a flag's kind from its default (bool: a switch; int: converted); a
        # repeatable flag is named in `iterable` and defaults to None in the signature.
        params = [inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        params += [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None if f.iterable else f.default,
            )
            for name, f in declared.items()
        ]
        helps = {name: f.help for name, f in declared.items()}
        iterable = [name for name, f in declared.items() if f.iterable]

        def body(c: Context, **kwargs: Any) -> None:
            values = {k: (list(v or []) if k in iterable else v) for k, v in kwargs.items()}
            flags = flags_cls(**values)
            from tasks.lib.engine import engine_session

            check_runtime_config(c)
            with engine_session():  # the task run's SSH link closes here, however it ends
                if isinstance(flags, EngineFlags) and not getattr(flags, "dry_run", False):
                    _start_link_early(c, flags.context)
                fn(c, flags)

        body.__name__ = body.__qualname__ = fn.__name__
        body.__doc__ = fn.__doc__
        body.__module__ = fn.__module__
        body.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        made: FlagTask = task(
            name=name or fn.__name__.rstrip("_").replace("_", "-"),
            help=helps,
            iterable=iterable,
            auto_shortflags=False,
            klass=FlagTask,
        )(body)
        made.flags_cls = flags_cls
        return made

    return decorate


def _start_link_early(c: Context, context: str) -> None:
    """An engine task on an ``ssh://`` engine: start ssh's handshake now, while the task
    imports its libraries (it costs about as long); the first client waits for it. Errors are
    left to the task's own first engine call, which reports them."""
    from tasks.lib.engine import start_link

    try:
        start_link(engine_target(c, context))
    except Interrupted:
        raise  # Ctrl-C while the link starts is Ctrl-C
    except TaskError:
        pass


NO_TASK_FLAGS = frozenset(
    {"--list", "-l", "--complete", "--help", "-h", "--version", "-V", "--print-completion-script"}
)


def runs_a_task(argv: Sequence[str]) -> bool:
    """False when ``argv`` (without the program name) only lists, completes, shows help or the
    version: Invoke runs no task then, so nothing needs the config defaults (their import is
    most of what ``inv --list`` and each shell completion cost beyond Invoke itself). When
    unsure, True: a flag value that looks like one of these flags is an error in Invoke."""
    for token in argv:
        if token in NO_TASK_FLAGS or token.partition("=")[0] in NO_TASK_FLAGS:
            return False
    return True


def first_engine_context(ns: Any, argv: Sequence[str]) -> str | None:
    """The ``--context`` of the first task in ``argv`` (without the program name; "" when it
    has none) when that task will really talk to its engine; None when it may not, or when
    unsure: a core flag first (``-f``, ``--list``...), an unknown task, a flags class that is
    not :class:`EngineFlags`, ``--dry-run``, ``--help``. Only the first task counts."""
    if not argv or argv[0].startswith("-"):
        return None
    names = set(ns.task_names)
    for aliases in ns.task_names.values():
        names.update(aliases)
    if argv[0] not in names:
        return None
    flags_cls = getattr(ns[argv[0]], "flags_cls", None)
    if not (isinstance(flags_cls, type) and issubclass(flags_cls, EngineFlags)):
        return None
    own: list[str] = []
    for token in argv[1:]:
        if token in names:
            break
        own.append(token)
    context = ""
    for i, token in enumerate(own):
        if token in ("--help", "-h", "--dry-run") or token.startswith("--dry-run="):
            return None
        if token == "--context":
            if i + 1 >= len(own):
                return None
            context = own[i + 1]
        elif token.startswith("--context="):
            context = token.partition("=")[2]
    return context


def prestart_link(ns: Any, argv: Sequence[str] | None = None) -> None:
    """Start the SSH link of this run as ``tasks.py`` loads, before Invoke parses the command
    line and loads its config: ssh's handshake is most of what an SSH task waits for. Only
    for a run whose first task will talk to its engine (:func:`first_engine_context`) on an
    ``ssh://`` engine; the target is resolved from Invoke's own config files and environment,
    as the task will resolve it, so the task finds this link open (same endpoint and options)
    and uses it. Anything unexpected: nothing is started here and the task starts its link
    itself, reporting any problem then."""
    context = first_engine_context(ns, list(sys.argv[1:] if argv is None else argv))
    if context is None or os.environ.get("INVOKE_RUNTIME_CONFIG"):
        return
    if not context and not _may_be_remote():
        return
    from invoke import Config

    from tasks.lib.engine import start_link

    try:
        config = Config(project_location=PROJECT_DIR, lazy=False)
        config.load_collection(ns.configuration())
        config.load_project()
        config.load_shell_env()
        start_link(engine_target(Context(config=config), context))
    except Interrupted:
        raise
    except Exception:  # the task resolves its own target and says what is wrong
        return


def _may_be_remote() -> bool:
    """Cheap: could this run's engine, with no ``--context``, be an ``ssh://`` one? Yes when
    Invoke's environment or one of its config files sets ``docker_context`` (resolved only by
    loading Invoke's config), else what the environment names (DOCKER_HOST, DOCKER_CONTEXT,
    the docker CLI's current context), read as every task reads it."""
    if os.environ.get("INVOKE_MEESHY_DOCKER_CONTEXT"):
        return True
    from tasks.lib.fsread import read_bytes

    homes = [Path("/etc/invoke"), Path.home() / ".invoke", PROJECT_DIR / "invoke"]
    for base in homes:
        for ext in (".yaml", ".yml", ".json", ".py"):
            with suppress(OSError):  # bytes: a file that is not UTF-8 is Invoke's to report
                if b"docker_context" in read_bytes(base.with_suffix(ext)):
                    return True
    from tasks.lib.engine import EngineTarget

    try:
        return EngineTarget().is_ssh
    except TaskError:  # an unknown context: the task says so
        return False


# -- config -------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def meeshy_config(c: Context) -> Any:
    """Invoke's merged ``meeshy`` config as plain data (dicts, lists, scalars), after the
    ``INVOKE_MEESHY_*`` variables Invoke would misread are refused."""
    from tasks.lib.config import check_env_vars

    data = _plain(c.config.get("meeshy", {}))
    if isinstance(data, Mapping):
        check_env_vars(data, os.environ)
    return data


def settings(
    c: Context,
    flags: Any = None,
    *,
    builder: str | None = None,
) -> Settings:
    """Settings from Invoke's config, the environment and whichever of ``--root``,
    ``--registry``, ``--context`` and ``--builder`` the flags object has. Also tells the engine
    module how to reach ``ssh://`` engines (``meeshy.ssh``)."""
    from tasks.lib.config import resolve
    from tasks.lib.engine import use_ssh_options

    s = resolve(
        meeshy_config(c),
        env=os.environ,
        project_dir=PROJECT_DIR,
        root=getattr(flags, "root", "") or None,
        registry=getattr(flags, "registry", "") or None,
        docker_context=getattr(flags, "context", "") or None,
        builder=builder or getattr(flags, "builder", "") or None,
    )
    use_ssh_options(s.ssh)
    return s


def engine_target(c: Context, context: str = "") -> EngineTarget:
    """The engine for tasks that need no monorepo (volumes, docker.ensure): ``--context``,
    else config ``meeshy.docker_context``, else DOCKER_HOST / DOCKER_CONTEXT / current."""
    from tasks.lib.config import check_config
    from tasks.lib.engine import EngineTarget, use_ssh_options

    checked = check_config(meeshy_config(c))  # the whole config, not only the keys used here
    use_ssh_options(checked.ssh)
    return EngineTarget(
        context=context or str(checked.merged["docker_context"] or ""), ssh=checked.ssh
    )


# -- errors, signals, closed pipes ----------------------------------------------------------------


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    from tasks.lib.processes import stop_children

    # Stop what runs under us first (docker CLI, the SSH link): worker threads waiting on their
    # output then return, so the exception is not held up until a build or copy ends.
    stop_children(timeout=0)
    raise Interrupted(signum)


def interrupt_on_signals() -> None:
    """From the moment ``tasks.py`` loads: SIGINT/SIGTERM/SIGHUP raise :class:`Interrupted`
    (one line and 128+N through :func:`excepthook`) where Invoke would turn a Ctrl-C during
    its loading into a silent exit 1. Each task body installs the same handlers again
    (:func:`stop_on_signals`)."""
    if os.name != "posix":
        return
    with suppress(ValueError):  # not the main thread: leave the signals alone
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, _raise_interrupted)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread, also when
    the shell started us with SIGINT ignored (``cmd &``): CI runners and ``timeout`` signal
    the task process alone, and it must stop what it started."""
    if os.name != "posix":
        yield
        return
    try:
        previous = {
            s: signal.signal(s, _raise_interrupted)
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }
    except ValueError:  # not the main thread (tests calling tasks from threads)
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _quiet_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so Python's exit flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


@contextmanager
def running(out: Output | None = None) -> Iterator[Output]:
    """Run a task body: TaskError -> its line and exit code; a signal -> children stopped,
    a line, 128+N; stdout closed early -> 141 quietly. No traceback reaches the user. The
    engine links the body opened (an SSH forward) are closed on the way out, however it ends."""
    from tasks.lib.engine import engine_session
    from tasks.lib.output import Output
    from tasks.lib.processes import stop_children

    out = out or Output()
    try:
        with stop_on_signals(), engine_session():
            yield out
    except Interrupted as exc:
        stop_children()
        _safe_error(out, exc.line())
        _json_error(out, exc.message, exc.hint, exc.exit_code)
        raise Exit(code=exc.exit_code) from None
    except KeyboardInterrupt:
        stop_children()
        _safe_error(out, "interrupted")
        _json_error(out, "interrupted", None, 130)
        raise Exit(code=130) from None
    except TaskError as exc:
        _safe_error(out, exc.line())
        _json_error(out, exc.message, exc.hint, exc.exit_code)
        raise Exit(code=exc.exit_code) from None
    except (OutputClosed, BrokenPipeError):
        stop_children()  # `stack.logs --follow | head`: compose must not outlive the task
        _quiet_stdout()
        raise Exit(code=141) from None


def _json_error(out: Output, message: str, hint: str | None, code: int) -> None:
    """With --json and no document written yet (refused, or interrupted before the result):
    the error is the one document, so a script reading stdout never gets nothing."""
    if out.json_mode and not out.json_written:
        with suppress(OutputClosed, OSError):
            out.json({"error": message, "hint": hint, "exit_code": code})


def _safe_error(out: Output, line: str) -> None:
    with suppress(BrokenPipeError, OSError):
        out.error(line)


def excepthook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
    """Last line of defence, installed by ``tasks.py``: what escapes a task or Invoke itself
    (a config file Invoke cannot read, Ctrl-C during imports, a bug) is one line, not a
    traceback. ``MEESHY_DEBUG=1`` shows the traceback."""
    if os.environ.get("MEESHY_DEBUG"):
        sys.__excepthook__(kind, exc, tb)
        return
    code = 70
    if isinstance(exc, KeyboardInterrupt):
        line, code = "interrupted", 130
    elif isinstance(exc, OutputClosed | BrokenPipeError):
        _quiet_stdout()
        os._exit(141)
    elif isinstance(exc, TaskError):
        line, code = exc.line(), exc.exit_code
    elif (path := _config_file_in(tb)) is not None:  # raised reading or merging a config file
        line, code = _config_file_line(path, exc, tb), 2
    elif (var := _uncastable_env_var(tb)) is not None:  # before: Invoke's error is a config one
        line, code = var, 2
    elif _is_config_load_error(exc):
        line, code = _config_error_line(exc, tb), 2
    else:
        line = (
            f"internal error, please report it: {kind.__name__}: {exc} "
            "(MEESHY_DEBUG=1 shows the traceback)"
        )
    with suppress(Exception):
        sys.stdout.flush()
    with suppress(Exception):
        sys.stdout.flush()
    try:
        sys.stderr.write(f"ERROR: {line}\n")
        sys.stderr.flush()
    finally:
        os._exit(code)


def _uncastable_env_var(tb: Any) -> str | None:
    """The line for an ``INVOKE_*`` variable Invoke could not turn into its setting's type
    (``int('abc')`` in its env loader), from the loader's own frame; None otherwise."""
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "_path_set" and frame.f_code.co_filename.endswith(
            os.path.join("invoke", "env.py")
        ):
            path = frame.f_locals.get("key_path") or []
            value, old = frame.f_locals.get("value"), frame.f_locals.get("old")
            var = "INVOKE_" + "_".join(str(k) for k in path).upper()
            setting = ".".join(str(k) for k in path)
            if isinstance(_default_at(path), str) and not isinstance(old, str):
                # Invoke casts the variable to the type a config file gave the key: the
                # file is at fault (an unquoted `project: 5`), not the variable
                return (
                    f"{setting} is {old!r} in a config file, not a string, so Invoke "
                    f"cannot read {var}={value!r}: quote it in the file"
                )
            if isinstance(old, list | tuple):
                return (
                    f"{var}={value!r}: Invoke cannot set a list from a variable: "
                    f"set {setting} in invoke.yaml (or a file given with -f), and unset {var}"
                )
            return f"{var}={value!r} is not {_a(old)}: set it to one, e.g. {old!r}"
        tb = tb.tb_next
    return None


def _default_at(path: list[Any]) -> Any:
    """The default of the config key ``path`` (``["meeshy", "stacks", "dev", "project"]``); a
    stack or service the config adds has the keys every one has (``meeshy.stacks.qa.project``
    is a string too); None when it has none (a key the user added)."""
    from tasks.lib.config import DEFAULT_STACKS, Service, defaults

    node: Any = {"meeshy": defaults()}
    for depth, key in enumerate(path):
        if not isinstance(node, dict):
            return None
        if key not in node and path[:depth] == ["meeshy", "stacks"]:
            node = {key: next(iter(DEFAULT_STACKS.values()))}
        elif key not in node and path[:depth] == ["meeshy", "services"]:
            node = {key: Service(name=str(key)).to_config()}
        elif key not in node:
            return None
        node = node[key]
    return node


def _is_config_load_error(exc: BaseException) -> bool:
    """YAML errors (PyYAML, or the copy Invoke may vendor), Invoke's config errors, and
    undecodable config files."""
    mods = [c.__module__ for c in type(exc).__mro__]
    return (
        any("yaml" in m for m in mods)
        or type(exc).__module__.startswith(("invoke.exceptions", "invoke.config"))
        or isinstance(exc, UnicodeDecodeError)
    )


_CONFIG_FILE_FRAMES = frozenset({"_load_yaml", "_load_json", "_load_py", "_merge_file"})


def _config_file_in(tb: Any) -> str | None:
    """The config file Invoke was loading or merging when ``tb`` was raised: the ``path`` of
    its loader's (or ``_merge_file``'s) frame; None when no config file was being read."""
    found = None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name in _CONFIG_FILE_FRAMES and frame.f_code.co_filename.endswith(
            os.path.join("invoke", "config.py")
        ):
            path = frame.f_locals.get("path")
            found = str(path) if path else found
        tb = tb.tb_next
    return found


def _config_file_line(path: str, exc: BaseException, tb: Any) -> str:
    """One line naming the config file, and the line in it when the parser says which."""
    hint = f": fix {path}"
    mark = getattr(exc, "problem_mark", None)  # PyYAML's MarkedYAMLError
    if mark is not None:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return f"{path}, line {mark.line + 1}, column {mark.column + 1}: {problem}{hint}"
    if isinstance(exc, ValueError) and hasattr(exc, "lineno") and hasattr(exc, "colno"):
        return f"{path}, line {exc.lineno}, column {exc.colno}: {getattr(exc, 'msg', exc)}{hint}"
    if isinstance(exc, UnicodeDecodeError):
        try:
            with open(path, "rb") as f:
                line = f.read(exc.start).count(b"\n") + 1
        except OSError:
            return f"{path} is not UTF-8 text{hint}"
        bad = exc.object[exc.start : exc.start + 1].hex()
        return f"{path}, line {line}: byte 0x{bad} is not UTF-8{hint}"
    if type(exc).__name__ == "AmbiguousMergeError":
        return _config_error_line(exc, tb, fix=f"fix {path}")
    if isinstance(exc, AttributeError) and "has no attribute 'items'" in str(exc):
        kind = str(exc).split("'")[1]  # "'list' object has no attribute 'items'"
        return (
            f"{path} must hold a mapping (meeshy: ...) at its top level, not {_a_kind(kind)}{hint}"
        )
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"cannot read the config file {path} ({type(exc).__name__}: {first[:200]}){hint}"


def check_runtime_config(c: Context) -> None:
    """``inv -f FILE`` (or ``INVOKE_RUNTIME_CONFIG``) naming no file: Invoke skips it
    silently, and the task would run on the defaults, prod's among them. Refused."""
    config = c.config  # Invoke leaves _runtime_found unset (not False) for a missing file
    path = getattr(config, "_runtime_path", None)
    if path and not getattr(config, "_runtime_found", None):
        raise ConfigError(
            f"config file {path} (from -f or INVOKE_RUNTIME_CONFIG) does not exist",
            hint="check its path",
        )


def _merge_mismatch(tb: Any) -> tuple[str, Any, Any] | None:
    """Where Invoke's ``merge_dicts`` failed: (the dotted key, outermost first, from the
    ``key`` of each of its recursive frames; the value the config gave; the value it was to
    merge into), from its innermost frame; None when no such frame is in ``tb``."""
    keys: list[str] = []
    last: dict[str, Any] | None = None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "merge_dicts" and "key" in frame.f_locals:
            last = frame.f_locals
            keys.append(str(last["key"]))
        tb = tb.tb_next
    if last is None:
        return None
    base = last.get("base")
    into = base.get(last["key"]) if isinstance(base, dict) else None
    return ".".join(keys), last.get("value"), into


_KINDS = {
    "str": "a string",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "NoneType": "empty (null)",
    "list": "a list",
    "dict": "a mapping",
}


def _a(value: Any) -> str:
    """What a YAML user calls the value's type: ``a string``, ``a whole number``, ``a list``."""
    return _a_kind(type(value).__name__)


def _a_kind(kind: str) -> str:
    """:func:`_a` of a type's name (``int``: ``a whole number``)."""
    return _KINDS.get(kind) or ("an " if kind[:1] in tuple("aeiou") else "a ") + kind


def _config_error_line(
    exc: BaseException,
    tb: Any = None,
    fix: str = "fix the config file (invoke.yaml, or the one -f names)",
) -> str:
    """Invoke's merge error dumps the whole defaults; say only what the config gave, and
    where (``fix``: what to fix, when the file is known)."""
    text = str(exc).strip()
    mismatch = _merge_mismatch(tb) if type(exc).__name__ == "AmbiguousMergeError" else None
    if mismatch is not None:
        key, given, into = mismatch
        shown = repr(given)[:120]
        if isinstance(given, dict):  # a mapping where a value is expected
            return (
                f"cannot read the Invoke config: {key} must be {_a(into)}, not a mapping "
                f"({shown}): {fix}"
            )
        return (
            f"cannot read the Invoke config: {key} must be a mapping and is {_a(given)} "
            f"({shown}): {fix}"
        )
    first = text.splitlines()[0] if text else type(exc).__name__
    return (
        f"cannot read the Invoke config ({type(exc).__name__}: {first[:200]}): "
        "fix invoke.yaml or the INVOKE_* variable"
    )
