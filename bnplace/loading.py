"""Turn ``package.module:Name`` and ``path/to/file.py:Name`` specs into Python objects.

Every failure is a :class:`SpecError` with a one-line message, so the CLI can print it and exit 2
instead of showing a traceback.

A file is imported under a name that stays the same from run to run, because ``torch.save`` of a
model records its class by module name (``winner.pt``, ``bnplace export --output``): the dotted
path from the working folder when ``import`` finds the file that way (``examples/models.py`` ->
``examples.models``), so a plain ``torch.load`` from that folder imports it again; a file inside
a package, by its package's dotted name (its relative imports need it); else a name made from
the file's absolute path (see :func:`file_module_name`).
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import importlib
import importlib.util
import inspect
import json
import keyword
import sys
from pathlib import Path
from typing import Any, Callable


PRIVATE_PREFIX = "_bnplace_user_"  # module names of files that no ``import`` finds


class SpecError(ValueError):
    """A spec that does not name a loadable object, or that object failed to build."""


def load_object(spec: str) -> Any:
    """Import the module (or file) a spec names and return the attribute after the colon."""
    module_part, sep, attr_path = spec.rpartition(":")
    if not sep or not module_part or not attr_path:
        raise SpecError(f"bad spec {spec!r}: expected 'package.module:Name' or 'path/to/file.py:Name'")
    module = _import_file(module_part) if _looks_like_path(module_part) else _import_module(module_part)
    obj: Any = module
    for attr in attr_path.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            public = [name for name in dir(obj) if not name.startswith("_")]
            raise SpecError(f"{module_part!r} has no attribute {attr_path!r}"
                            f"{_did_you_mean(attr, public)}") from None
    return obj


def _did_you_mean(name: str, candidates: list[str]) -> str:
    """``; did you mean 'Net'?`` for a misspelt name (the case of a letter, a letter missed)."""
    close = difflib.get_close_matches(name, candidates, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """Parse ``--model-kwargs`` JSON into a dict (an empty dict for None or empty text)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise SpecError(f"--model-kwargs is not valid JSON: {err.msg} at column {err.colno}") from None
    if not isinstance(value, dict):
        raise SpecError("--model-kwargs must be a JSON object, e.g. '{\"hidden\": 128}'")
    return value


def model_factory(spec: str, kwargs: dict[str, Any] | None = None) -> Callable[[], Any]:
    """A zero-argument callable building a fresh ``nn.Module`` from a spec each time it is called.

    The spec may name an ``nn.Module`` subclass or any function returning a module. The first
    model is built here, so a spec that cannot build fails now, not in the middle of a study.
    """
    from torch import nn

    target = load_object(spec)
    if isinstance(target, nn.Module):  # callable, but calling it runs its forward
        raise SpecError(f"{spec!r} is a model instance ({type(target).__name__}), not a class or "
                        "function: give its class, or a function that builds a new model")
    if not callable(target):
        raise SpecError(f"{spec!r} is not a class or function")
    if inspect.isclass(target) and not issubclass(target, nn.Module):  # a config, an output type
        raise SpecError(f"{spec!r} is the class {target.__name__}, not a torch.nn.Module "
                        "subclass: give the model's class, or a function that builds the model")
    factory = functools.partial(_build, spec, target, dict(kwargs or {}))
    factory()
    return factory


def load_model(spec: str, kwargs: dict[str, Any] | None = None) -> Any:
    """Build one ``nn.Module`` from a spec (see :func:`model_factory`)."""
    return model_factory(spec, kwargs)()


def _build(spec: str, target: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    from torch import nn

    _check_arguments(spec, target, kwargs)
    try:
        model = target(**kwargs)
    except Exception as err:  # the user's constructor: report it on one line
        given = f" with {json.dumps(kwargs)}" if kwargs else ""
        raise SpecError(f"building {spec!r}{given} failed: {describe_error(err)}") from err
    if not isinstance(model, nn.Module):
        raise SpecError(f"{spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _check_arguments(spec: str, target: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Keyword arguments that do not fit ``target``'s signature, refused naming the arguments
    it needs or takes: Python's own message names neither, nor --model-kwargs."""
    try:
        signature = inspect.signature(target)
        signature.bind(**kwargs)
    except ValueError:  # no signature to read (some builtins): calling it will tell
        return
    except TypeError as err:
        parameters = signature.parameters
        named = [name for name, parameter in parameters.items()
                 if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)]
        missing = [name for name in named
                   if parameters[name].default is parameters[name].empty and name not in kwargs]
        unknown = [name for name in kwargs if name not in named]
        if missing:
            example = ", ".join([f"{json.dumps(name)}: {json.dumps(value)}"
                                 for name, value in kwargs.items()]
                                + [f'"{name}": ...' for name in missing])
            raise SpecError(f"{spec!r} needs {', '.join(missing)}: give "
                            f"{'them' if len(missing) > 1 else 'it'} with --model-kwargs "
                            f"'{{{example}}}'") from None
        if unknown:
            takes = f"it takes: {', '.join(named)}" if named else "it takes none"
            raise SpecError(f"{spec!r} takes no argument {unknown[0]!r}; {takes}") from None
        raise SpecError(f"{spec!r} cannot be built with --model-kwargs {json.dumps(kwargs)}: "
                        f"{err}") from None


def _looks_like_path(text: str) -> bool:
    return text.endswith(".py") or "/" in text or "\\" in text


def describe_error(err: BaseException) -> str:
    """``TypeName: first line of the message``: an error of the user's code (or a library's
    multi-line one, such as SQLAlchemy's) on the one line a CLI error has."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def file_module_name(path: Path) -> str:
    """The module name a Python file is imported under (``path`` resolved): its dotted path from
    the working folder when ``import`` finds the file by it; else, for a file inside a package
    (whose relative imports need that package), its dotted path from the folder above the
    outermost package; else ``_bnplace_user_<stem>_<digest of the path>``. Names not found from
    the working folder are registered by :func:`load_object` only."""
    _working_folder_on_path()
    dotted = _dotted_name(path, Path.cwd().resolve())
    if dotted and _found_as(dotted, path):
        return dotted
    root = package_root(path)
    dotted = _dotted_name(path, root) if root else None
    if root and dotted:
        sys.path.insert(0, str(root))
        try:
            if _found_as(dotted, path):
                return dotted
        finally:
            sys.path.remove(str(root))
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    return f"{PRIVATE_PREFIX}{path.stem}_{digest}"


def package_root(path: Path) -> Path | None:
    """The folder above the outermost package holding the file ``path``; None outside packages."""
    if not (path.parent / "__init__.py").is_file():
        return None
    folder = path.parent
    while (folder.parent / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return folder.parent


def _dotted_name(path: Path, folder: Path) -> str | None:
    try:
        parts = path.with_suffix("").relative_to(folder).parts
    except ValueError:
        return None
    if parts and all(part.isidentifier() and not keyword.iskeyword(part) for part in parts):
        return ".".join(parts)
    return None


def _found_as(dotted: str, path: Path) -> bool:
    """Whether ``import dotted`` finds the file ``path`` (and not another module of that name)."""
    try:
        found = importlib.util.find_spec(dotted)
    except Exception:  # a parent package that fails to import, or is no package
        return False
    return found is not None and bool(found.origin) and Path(found.origin).resolve() == path


def _working_folder_on_path() -> None:
    """Let ``mymod:Net`` find mymod.py in the working folder, as ``python -c`` would."""
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))


def _import_module(name: str) -> Any:
    _working_folder_on_path()
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        raise SpecError(f"cannot import module {name!r}: {err}") from None
    except SystemExit as err:
        raise _exited_at_import(f"importing {name!r}", err) from None
    except Exception as err:
        raise SpecError(f"importing {name!r} failed: {describe_error(err)}") from err


def _exited_at_import(what: str, err: SystemExit) -> SpecError:
    """A script's ``sys.exit()`` at import: without this the command would end there, silently,
    with the script's status (0 too), and nothing tuned."""
    return SpecError(f"{what} called exit({err.code!r}): importing a file runs its top-level "
                     "code, so put what it runs as a script under "
                     "`if __name__ == \"__main__\":`")


def _import_file(path_text: str) -> Any:
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise SpecError(f"no such file: {path_text}")
    module_name = file_module_name(path)
    if module_name in sys.modules:
        return sys.modules[module_name]
    # sibling imports inside the user's file, and the package of a file imported by its path
    folders = [str(path.parent), *([str(package_root(path))] if package_root(path) else [])]
    sys.path[:0] = folders
    try:
        if module_name.startswith(PRIVATE_PREFIX):
            return _exec_file(path, module_name)
        return importlib.import_module(module_name)
    except SpecError:
        raise
    except SystemExit as err:
        raise _exited_at_import(f"running {path_text}", err) from None
    except Exception as err:
        raise SpecError(f"running {path_text} failed: {describe_error(err)}") from err
    finally:
        for folder in folders:
            sys.path.remove(folder)


def _exec_file(path: Path, module_name: str) -> Any:
    """Run a file no ``import`` finds as the module ``module_name``."""
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise SpecError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up here
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
