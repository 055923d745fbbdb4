"""YAML text → plain data, remembering the line of every key and item.

PyYAML alone is not enough for a config users edit by hand:
- it reads YAML 1.1, where a bare ``on:``/``yes:``/``no:`` is a boolean; here only
  ``true``/``false`` are booleans, so ``on:`` stays a (misplaced) key we can name;
- it silently keeps the last of two duplicate keys; here that is an error;
- it forgets where a value came from; here every path maps to its line, so errors say
  ``watcher.yaml:12: feeds[1].interval: ...``.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import Any

import yaml

from watcher.errors import ConfigError

Path_ = tuple[str | int, ...]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader whose booleans are only true/false (YAML 1.2 core schema style)."""


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def format_path(path: Path_) -> str:
    """``("feeds", 1, "interval")`` → ``feeds[1].interval``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class LocatedData:
    """Loaded YAML plus the line (1-based) where each path starts."""

    def __init__(self, data: Any, lines: dict[Path_, int], file: str) -> None:
        self.data = data
        self.lines = lines
        self.file = file

    def line_of(self, path: Path_) -> int | None:
        """The line of the longest prefix of ``path`` that exists in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def error(self, path: Path_, problem: str) -> ConfigError:
        return ConfigError(problem, file=self.file, line=self.line_of(path), key=format_path(path))


def load_yaml(text: str, file: str) -> LocatedData:
    """Parse ``text``; syntax errors become ConfigError with the line of the problem."""
    try:
        node = yaml.compose(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(plain_yaml_problem(exc), file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=file) from None
    lines: dict[Path_, int] = {}
    if node is None:
        return LocatedData({}, lines, file)
    builder = _Builder(file, lines)
    return LocatedData(builder.build(node, ()), lines, file)


# PyYAML's parser words ("<block end>", "<block mapping start>") → what to look at.
_TOKEN_WORDS = {
    "<block end>": "the end of an indented block",
    "<block mapping start>": "a new `key: value` line",
    "<block sequence start>": "a new `- item` line",
    "<block entry>": "a `- item` line",
    "<stream end>": "the end of the file",
    "<document start>": "a `---` line",
    "<scalar>": "a value",
}


def plain_yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    """A YAML syntax error as a person can act on it: what kind of mistake and the fix."""
    problem = str(exc.problem or exc)
    if "'\\t'" in problem or "\t" in problem:
        return "tabs are not allowed in YAML: use spaces to indent"
    context = str(exc.context or "")
    for word, meaning in _TOKEN_WORDS.items():
        problem = problem.replace(f"'{word}'", meaning).replace(word, meaning)
    if "mapping values are not allowed" in problem:
        return (
            "a second `key:` on this line: put it on a line of its own, or quote a value "
            'that contains ": "'
        )
    if "expected the end of an indented block" in problem:
        return (
            f"indentation: {problem}; a key here is indented differently from the keys "
            "beside it (indent each level by the same number of spaces)"
        )
    if "flow mapping" in context or "flow sequence" in context:
        return f"unclosed {{...}} or [...]: {problem} (a closing bracket or a comma is missing)"
    if "quoted scalar" in context:
        return f"unclosed quote: {problem}"
    return f"invalid YAML: {problem}"


class _Builder:
    """Walks a composed node tree into dicts/lists/scalars, recording lines."""

    def __init__(self, file: str, lines: dict[Path_, int]) -> None:
        self.file = file
        self.lines = lines
        self.constructor = _StrictLoader("")
        # An alias refers to an already built node: reuse it instead of rebuilding, so a
        # "billion laughs" document costs memory linear in its size.
        self.built: dict[int, Any] = {}

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in self.built:
            return self.built[id(node)]
        if isinstance(node, yaml.MappingNode):
            value: Any = self._mapping(node, path)
        elif isinstance(node, yaml.SequenceNode):
            value = [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        else:
            value = self._scalar(node)
        self.built[id(node)] = value
        return value

    def _scalar(self, node: yaml.Node) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"cannot read value: {exc}", file=self.file, line=node.start_mark.line + 1
            ) from None

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        try:
            self.constructor.flatten_mapping(node)  # resolves "<<" merge keys
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"bad merge key: {exc}", file=self.file, line=node.start_mark.line + 1
            ) from None
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            line = key_node.start_mark.line + 1
            if key in result:
                raise ConfigError(
                    "duplicate key (YAML would silently keep only the last one)",
                    file=self.file,
                    line=line,
                    key=format_path((*path, key)),
                )
            self.lines[(*path, key)] = line
            result[key] = self.build(value_node, (*path, key))
        return result

    def _key(self, node: yaml.Node) -> str:
        key = self._scalar(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(key, Hashable) or key is None or isinstance(key, (list, dict)):
            raise ConfigError(
                "a key must be a plain word", file=self.file, line=node.start_mark.line + 1
            )
        return str(key)
