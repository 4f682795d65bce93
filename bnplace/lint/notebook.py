"""Jupyter notebooks as one Python source: the code cells joined, IPython magics neutralised, and
the way back (rows to cells, fixed code to notebook JSON with everything else kept).

Cells are joined with a marker comment line so fixed code can be split back into its cells; a
magic line becomes a placeholder statement that names the original line, so it parses and is put
back exactly. Cell numbers are 1-based over all cells, as Jupyter shows them.
"""

from __future__ import annotations

import ast
import bisect
import json
import re
from dataclasses import dataclass, field

from bnplace.lint import verbatim

_BOUNDARY = "# bnplace: cell boundary"
_PLACEHOLDER = re.compile(r"# bnplace-magic (\d+)$")
_LINE_MAGIC = re.compile(r"^(\s*)(?:[%!?]|[\w.]+\?{1,2}\s*$)")
_ASSIGNED_MAGIC = re.compile(r"^(\s*[\w.]+\s*=\s*)[%!]")
_LINE_END = re.compile(r"\r\n?|\n")
# The line end and indent after a notebook JSON's opening brace.
_JSON_INDENT = re.compile(r"\{(\r?\n)([ \t]*)")
# Cell magics whose body is still Python; the body of any other (%%bash, %%html) is not linted.
_PYTHON_CELL_MAGICS = ("%%time", "%%timeit", "%%capture", "%%prun")


class NotebookError(ValueError):
    """The file is not a notebook this linter can read."""


@dataclass(frozen=True)
class JsonLayout:
    """How a notebook's JSON is written, so that a fix writes it back the same way and changes
    only the cells it fixes: the indent (Jupyter writes 1 space, Colab 2, a compact file none),
    the line ends, non-ASCII text escaped (``\\u00e8``, as ``json.dump`` writes it by default) or
    not, and a final newline or not."""

    indent: str | None = " "
    newline: str = "\n"
    ensure_ascii: bool = False
    final_newline: bool = True

    @classmethod
    def of(cls, text: str) -> JsonLayout:
        match = _JSON_INDENT.match(text)
        return cls(indent=match.group(2) if match else None,
                   newline=match.group(1) if match else "\n", ensure_ascii=text.isascii(),
                   final_newline=text.endswith("\n"))

    def dumps(self, document: dict) -> str:
        text = json.dumps(document, indent=self.indent, ensure_ascii=self.ensure_ascii)
        text += "\n" if self.final_newline else ""
        return text.replace("\n", self.newline)  # JSON strings hold no raw line ends


@dataclass
class Notebook:
    document: dict
    code_cells: list[int]      # indices (0-based) of code cells in document["cells"]
    starts: list[int]          # first row of each code cell in the joined code
    code: str                  # the joined, neutralised code
    originals: list[str]       # magic lines, by placeholder number
    syntax_errors: list[tuple[int, int, str]] = field(default_factory=list)  # (row, col, msg)
    layout: JsonLayout = JsonLayout()

    @classmethod
    def parse(cls, text: str) -> Notebook:
        """Raises NotebookError for what is not an nbformat 4 notebook, or is a malformed one."""
        try:
            document = json.loads(text)
        except ValueError as err:
            raise NotebookError(f"not a notebook: {err}") from err
        notebook = cls(document, [], [], "", [], layout=JsonLayout.of(text))
        cells = _cells(document)
        if not _is_python(document.get("metadata")):
            return notebook  # no Python cells: nothing to lint, nothing to fix
        parts, row = [], 1
        for index, cell in enumerate(cells):
            if cell.get("cell_type") != "code":
                continue
            source = _source_text(cell, index)
            written = _rows(source)
            lines = notebook._parsable(written, notebook._neutralised(written), row)
            notebook.code_cells.append(index)
            notebook.starts.append(row)
            parts.append("\n".join(lines) + "\n")
            row += len(lines) + 1
        notebook.code = (_BOUNDARY + "\n").join(parts)
        return notebook

    def _neutralised(self, lines: list[str]) -> list[str]:
        magic_cell = bool(lines) and lines[0].startswith("%%")
        python_body = magic_cell and lines[0].split()[0] in _PYTHON_CELL_MAGICS
        result = []
        for number, line in enumerate(lines):
            if magic_cell and (number == 0 or not python_body):
                result.append(self._placeholder("", line, ""))
            elif match := _ASSIGNED_MAGIC.match(line):
                result.append(self._placeholder(match.group(1), line, "None  "))
            elif match := _LINE_MAGIC.match(line):
                result.append(self._placeholder(match.group(1), line, "pass  "))
            else:
                result.append(line)
        return result

    def _parsable(self, written: list[str], lines: list[str], row: int) -> list[str]:
        """A cell that does not parse (a half-written one) is noted and set aside whole, as
        written, so the other cells are still linted."""
        try:
            ast.parse("\n".join(lines))
        except SyntaxError as err:
            self.syntax_errors.append((row + (err.lineno or 1) - 1,
                                       max((err.offset or 1) - 1, 0), err.msg))
            return [self._placeholder("", line, "pass  ") for line in written]
        return lines

    def _placeholder(self, prefix: str, original: str, statement: str) -> str:
        self.originals.append(original)
        return f"{prefix}{statement}# bnplace-magic {len(self.originals) - 1}"

    def cell_of(self, row: int) -> tuple[int, int]:
        """(1-based cell number, row within that cell) for a row of the joined code."""
        position = max(bisect.bisect_right(self.starts, row) - 1, 0)
        return self.code_cells[position] + 1, row - self.starts[position] + 1

    def with_code(self, code: str) -> str:
        """The notebook JSON with its code cells replaced by ``code`` (split at the markers)."""
        parts = code.split(_BOUNDARY + "\n") if self.code_cells else []
        if len(parts) != len(self.code_cells):
            raise NotebookError("the fixed code no longer splits into the notebook's cells")
        for index, part in zip(self.code_cells, parts):
            cell = self.document["cells"][index]
            written = _source_text(cell, index)
            line_end = _LINE_END.search(written)  # the cell's own (CRLF from Windows editors)
            newline = line_end.group() if line_end else "\n"
            source = newline.join(self._restored(line) for line in _rows(part))
            if written.endswith(("\r", "\n")):
                source += newline
            cell["source"] = (verbatim.lines(source)
                              if isinstance(cell.get("source"), list) else source)
        return self.layout.dumps(self.document)

    def _restored(self, line: str) -> str:
        match = _PLACEHOLDER.search(line)
        return self.originals[int(match.group(1))] if match else line


def _cells(document: object) -> list[dict]:
    """The cells of an nbformat 4 document; a malformed one raises NotebookError rather than
    failing somewhere in the linter."""
    if not isinstance(document, dict):
        raise NotebookError("not a notebook: the JSON is not an object")
    if isinstance(document.get("nbformat"), int) and document["nbformat"] < 4:
        raise NotebookError(f"nbformat {document['nbformat']} notebooks are not supported; "
                            "convert it with `jupyter nbconvert --to notebook --inplace`")
    cells = document.get("cells")
    if not isinstance(cells, list):
        raise NotebookError("not a notebook: 'cells' is not a list")
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict):
            raise NotebookError(f"cell {number} is not a JSON object")
    return cells


def _is_python(metadata: object) -> bool:
    """Ruff's test for a Python notebook: the ``language_info`` name, else the ``kernelspec``
    language, else (neither given) Python."""
    if isinstance(metadata, dict):
        for key, name in (("language_info", "name"), ("kernelspec", "language")):
            info = metadata.get(key)
            if isinstance(info, dict) and isinstance(info.get(name), str):
                return info[name].lower() == "python"
    return True


def _rows(text: str) -> list[str]:
    """The lines of ``text`` without their ends. Python ends a line only at ``\\r`` or ``\\n``;
    ``str.splitlines`` also at ``\\u2028`` or a form feed, which may sit in a string literal."""
    return [line.rstrip("\r\n") for line in verbatim.lines(text)]


def _source_text(cell: dict, index: int) -> str:
    """A cell's source, nbformat's string or list of lines, as one string."""
    source = cell.get("source", "")
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    if not isinstance(source, str):
        raise NotebookError(f"cell {index + 1}: 'source' is not a string or a list of strings")
    return source
