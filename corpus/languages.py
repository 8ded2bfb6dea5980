"""Language of a file from its extension, with the names the query templates give
(GitHub's linguist names): what `corpus import` fills `language` with where a source has none.
The extract templates map the same extensions in SQL (queries/github_*.sql)."""

from __future__ import annotations

import posixpath

#: lowercase extension with the dot -> language
EXTENSIONS: dict[str, str] = {
    ".c": "C", ".h": "C", ".cs": "C#",
    **dict.fromkeys((".cpp", ".cc", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++"), "C++"),
    ".go": "Go", ".java": "Java", ".js": "JavaScript", ".mjs": "JavaScript", ".php": "PHP",
    ".py": "Python", ".rb": "Ruby", ".rs": "Rust", ".scala": "Scala", ".ts": "TypeScript",
    ".lua": "Lua", ".sh": "Shell", ".bash": "Shell", ".jl": "Julia", ".kt": "Kotlin",
    ".swift": "Swift", ".hs": "Haskell", ".pl": "Perl", ".r": "R", ".m": "Objective-C",
    ".dart": "Dart", ".ex": "Elixir", ".erl": "Erlang", ".ml": "OCaml", ".sql": "SQL",
    ".f90": "Fortran", ".vb": "Visual Basic", ".tsx": "TypeScript", ".jsx": "JavaScript",
}


def of_path(path: str | None) -> str | None:
    """The language of a path by its extension (case-insensitive); None when unmapped."""
    if not path:
        return None
    ext = posixpath.splitext(posixpath.basename(path))[1].lower()
    return EXTENSIONS.get(ext)
