"""Read a YAML settings file (a family spec, a ``voiceprep.yaml``) into a validated pydantic model.

One reader for every file a user writes: a safe loader that refuses duplicate keys, and one way to turn
pydantic's errors into lines a user can act on (``file: key.path: what is wrong (got value)``), raised as
:class:`~pipeline.errors.SpecError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from pipeline.errors import SpecError
from pipeline.rules.metrics import number

M = TypeVar("M", bound=BaseModel)


class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key]})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def display(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, else as is."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_mapping(path: Path, *, empty_ok: bool = False) -> dict[str, Any]:
    """The top-level mapping of a YAML file; :class:`SpecError` naming the file (and line) otherwise."""
    shown = display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{shown}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{shown}: cannot read the file ({exc})") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{shown}: {where}YAML syntax error: {problem}") from None
    if data is None:
        if empty_ok:
            return {}
        raise SpecError(f"{shown}: the file is empty")
    if not isinstance(data, dict):
        raise SpecError(f"{shown}: the top level must be a mapping of keys (got {type(data).__name__})")
    return data


def _loc_to_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _join(base: str, sub: str) -> str:
    if not base:
        return sub
    return f"{base}{sub}" if sub.startswith("[") else f"{base}.{sub}"


def _allowed_keys(root: type[BaseModel], loc: tuple[int | str, ...]) -> list[str] | None:
    """The keys the model at ``loc`` (the parent of an unknown key) accepts, when it can be found."""
    model: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        model = model.model_fields[part].annotation
        args = getattr(model, "__args__", ())
        if args and not (isinstance(model, type) and issubclass(model, BaseModel)):
            model = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), model)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return None


def describe_error(root: type[BaseModel], err: Any) -> tuple[str, str]:
    """``(dotted key path, message)`` for one pydantic error of ``root``.

    Errors raised as ``PydanticCustomError("spec_rule", ..., {"subpath", "message"})`` by a model's own
    cross-key rule name the key they are about (relative to the model that raised them).
    """
    loc = tuple(err["loc"])
    path = _loc_to_path(loc)
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = err.get("input")
    if kind == "spec_rule":
        return _join(path, ctx["subpath"]), ctx["message"]
    if kind.startswith("spec_"):
        return path, err["msg"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(root, loc[:-1])
        tail = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return path, f"unknown key{tail}"
    if kind == "missing":
        return path, "required key is missing"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return path, f"must be {bounds[kind]} {number(limit, digits=6)} (got {got!r})"
    return path, f"{err['msg'].rstrip('.')} (got {got!r})"


def validate(model: type[M], data: dict[str, Any], shown: str) -> M:
    """``model`` validated from ``data``; :class:`SpecError` with one ``shown: key: message`` line per error."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"{shown}: {key}: {msg}" for key, msg in (describe_error(model, e) for e in exc.errors())]
        raise SpecError("\n".join(lines)) from None


def load(model: type[M], path: Path) -> M:
    """Read ``path`` and validate it as ``model`` (see :func:`read_mapping` and :func:`validate`)."""
    return validate(model, read_mapping(path), display(path))
