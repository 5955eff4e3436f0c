"""`kg import`: files and folders into the graph, one transaction per file.

Order: entity files, documents, formulas, then triples, so triples can name any entity and cite
any document. An unchanged file (same SHA-256) is skipped; a changed one replaces everything
derived from it. Bad rows become one-line issues and the rest of the file still imports.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telesynth_tui import database as db
from telesynth_tui.config import IngestSettings
from telesynth_tui.graph.candidates import apply_acceptance, extract_document
from telesynth_tui.graph.chunking import chunk_markdown, markdown_title
from telesynth_tui.graph.formulas import load_formula_file
from telesynth_tui.graph.issues import ImportIssue
from telesynth_tui.graph.readers import (
    DOCUMENT_KINDS,
    RawFile,
    ReadError,
    decode_utf8,
    html_to_markdown,
    kind_of,
    normalize_markdown,
    pdf_to_text,
    plain_text_to_markdown,
    read_raw,
)
from telesynth_tui.graph.resolution import resolve_duplicates
from telesynth_tui.graph.store import ENTITY_TYPES, PREDICATES, Counts, KnowledgeGraph
from telesynth_tui.graph.technology import normalize_technology
from telesynth_tui.infra import transaction
from telesynth_tui.text import has_control_tokens, strip_control_tokens

SKIPPED_NAMES = ("readme", "license", "licence", "changelog")
_ORDER = {"entities": 0, "document": 1, "formulas": 2, "triples": 3}


@dataclass
class FileResult:
    path: Path
    kind: str
    status: str  # imported | unchanged | failed | skipped
    counts: Counts = field(default_factory=Counts)
    issues: list[ImportIssue] = field(default_factory=list)


@dataclass
class ImportReport:
    files: list[FileResult] = field(default_factory=list)

    @property
    def counts(self) -> Counts:
        total = Counts()
        for f in self.files:
            total.add(f.counts)
        return total

    @property
    def issues(self) -> list[ImportIssue]:
        return [i for f in self.files for i in f.issues]

    def by_status(self, status: str) -> list[FileResult]:
        return [f for f in self.files if f.status == status]

    @property
    def nothing_imported(self) -> bool:
        return not self.by_status("imported") and not self.by_status("unchanged")


def expand_paths(paths: Iterable[Path]) -> Iterator[tuple[Path, Path, bool]]:
    """(file, import root, given explicitly) for every file under the given paths."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path).parts
                if child.is_file() and not any(p.startswith(".") for p in rel):
                    yield child, path, False
        else:
            yield path, path.parent, True


def _sniff_kind(raw: RawFile) -> str:
    """Entities or triples, from a CSV header or the keys of the first JSON line."""
    text = decode_utf8(raw)
    if raw.kind == "triples":
        header = next(csv.reader(io.StringIO(text)), [])
        keys = {h.strip().lower() for h in header}
    else:
        keys = set()
        for line in text.splitlines():
            if line.strip():
                try:
                    obj = json.loads(line)
                except (json.JSONDecodeError, RecursionError):
                    break
                keys = set(obj) if isinstance(obj, dict) else set()
                break
    if {"name", "type"} <= keys:
        return "entities"
    if {"subject", "predicate", "object"} <= keys:
        return "triples"
    raise ReadError(
        "not an entity file (name, type, ...) nor a triple file (subject, predicate, object)", 1
    )


def _rows(raw: RawFile) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row) of a CSV or JSONL file; a row that cannot be parsed is an error text."""
    text = decode_utf8(raw)
    if raw.kind == "triples":  # CSV
        reader = csv.reader(io.StringIO(text))
        try:
            header = [h.strip().lower() for h in next(reader)]
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    yield line, f"expected {len(header)} columns, found {len(row)}"
                    continue
                yield line, {k: v.strip() for k, v in zip(header, row, strict=True)}
        except csv.Error as exc:
            yield reader.line_num, f"malformed CSV: {exc}"
        return
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            obj = json.loads(content)
        except json.JSONDecodeError as exc:
            yield line, f"invalid JSON: {exc.msg}"
            continue
        except RecursionError:
            yield line, "JSON nested too deeply"
            continue
        if not isinstance(obj, dict):
            yield line, "expected a JSON object"
            continue
        yield line, obj


class Importer:
    def __init__(self, conn: sqlite3.Connection, settings: IngestSettings) -> None:
        self.conn = conn
        self.settings = settings
        self.kg = KnowledgeGraph(conn)

    def run(self, paths: Iterable[Path]) -> ImportReport:
        report = ImportReport()
        pending: list[tuple[int, Path, Path, RawFile]] = []
        for path, root, explicit in expand_paths(paths):
            kind = kind_of(path)
            if not path.exists():
                report.files.append(self._failed(path, "?", ReadError("no such file")))
                continue
            if kind is None:
                issue = ImportIssue(
                    path,
                    None,
                    f"unsupported file type {path.suffix or '(none)'!r}",
                    "error" if explicit else "warning",
                )
                report.files.append(
                    FileResult(path, "?", "failed" if explicit else "skipped", issues=[issue])
                )
                continue
            if not explicit and path.stem.lower().startswith(SKIPPED_NAMES):
                continue
            try:
                raw = read_raw(path, kind, int(self.settings.max_file_mb * 1e6))
                if kind in ("triples", "jsonl"):
                    kind = _sniff_kind(raw)
                elif kind in DOCUMENT_KINDS:
                    kind = "document"
            except ReadError as exc:
                report.files.append(self._failed(path, kind, exc))
                continue
            except Exception as exc:
                report.files.append(self._failed(path, kind, _unreadable(exc)))
                continue
            pending.append((_ORDER[kind], path, root, raw))
        pending.sort(key=lambda item: (item[0], str(item[1])))
        handlers: dict[int, Callable[[FileResult, RawFile, Path, int], None]] = {
            0: self._import_entities,
            1: self._import_document,
            2: self._import_formulas,
            3: self._import_triples,
        }
        for order, _path, root, raw in pending:
            kind = next(k for k, v in _ORDER.items() if v == order)
            report.files.append(self._import_one(raw, kind, root, handlers[order]))
        if report.by_status("imported"):
            with transaction(self.conn):  # one entity per thing, then acceptance by rule
                resolve_duplicates(self.conn)
                apply_acceptance(self.conn, self.settings.accept_confidence)
                db.bump_revision(self.conn)
        return report

    @staticmethod
    def _failed(path: Path, kind: str, exc: ReadError) -> FileResult:
        return FileResult(path, kind, "failed", issues=[ImportIssue(path, exc.line, exc.message)])

    def _import_one(
        self,
        raw: RawFile,
        kind: str,
        root: Path,
        handler: Callable[[FileResult, RawFile, Path, int], None],
    ) -> FileResult:
        result = FileResult(raw.path, kind, "imported")
        key = str(raw.path.resolve())
        if self.kg.source_hash(key) == raw.content_hash:
            result.status = "unchanged"
            return result
        try:
            # Everything derived from the file, the evidence of the relations that cite it, the
            # graph revision and (last) its content hash commit together: an interrupted import
            # leaves the old hash, so the next import does the file again.
            with transaction(self.conn):
                source_id = self.kg.replace_source(key, kind, raw.content_hash, len(raw.data))
                handler(result, raw, root, source_id)
                if not any(vars(result.counts).values()):
                    raise ReadError("nothing importable in this file")
                if kind == "document":
                    self.kg.relink_document(source_id, key)
                db.bump_revision(self.conn)
        except ReadError as exc:
            self._fail(result, exc)
        except sqlite3.DatabaseError:
            raise
        except Exception as exc:
            self._fail(result, _unreadable(exc))
        finally:
            self.kg._gazetteer = None  # a rollback may have removed entities it knew
        return result

    @staticmethod
    def _fail(result: FileResult, exc: ReadError) -> None:
        result.status = "failed"
        result.counts = Counts()
        if exc.line is not None or not any(i.severity == "error" for i in result.issues):
            result.issues.append(ImportIssue(result.path, exc.line, exc.message))

    # --- handlers -------------------------------------------------------------------------

    def _import_entities(self, result: FileResult, raw: RawFile, root: Path, src: int) -> None:
        new_ids: list[int] = []
        for line, row in _rows(raw):
            if isinstance(row, str):
                result.issues.append(ImportIssue(raw.path, line, row))
                continue
            if any(has_control_tokens(str(v)) for v in row.values()):
                row = {k: _clean_value(v) for k, v in row.items()}
                result.issues.append(
                    ImportIssue(raw.path, line, "chat-template control tokens removed", "warning")
                )
            name = str(row.get("name") or "").strip()
            type_ = str(row.get("type") or "").strip()
            if not name:
                result.issues.append(ImportIssue(raw.path, line, "entity without a name"))
                continue
            if type_ not in ENTITY_TYPES:
                result.issues.append(
                    ImportIssue(raw.path, line, f"unknown entity type {type_!r} for {name!r}")
                )
                continue
            aliases = row.get("aliases") or []
            if isinstance(aliases, str):
                aliases = [a.strip() for a in aliases.split(";") if a.strip()]
            technology = normalize_technology(str(row.get("technology") or ""))
            if technology is None:
                result.issues.append(
                    ImportIssue(
                        raw.path,
                        line,
                        f"unknown technology {row.get('technology')!r} for {name!r} "
                        "(use LTE, NR or both)",
                        "warning",
                    )
                )
                technology = ""
            upsert = self.kg.upsert_entity(
                name,
                type_,
                [str(a) for a in aliases],
                str(row.get("description") or ""),
                src,
                technology=technology,
            )
            if upsert.warning:
                result.issues.append(ImportIssue(raw.path, line, upsert.warning, "warning"))
            if upsert.created:
                result.counts.entities += 1
                new_ids.append(upsert.entity_id)
        result.counts.mentions += self.kg.link_new_entities(new_ids)

    def _import_document(self, result: FileResult, raw: RawFile, root: Path, src: int) -> None:
        fallback = raw.path.stem.replace("_", " ")
        if raw.kind == "pdf":
            title, text = pdf_to_text(raw)
        elif raw.kind == "html":
            title, text = html_to_markdown(decode_utf8(raw))
        elif raw.kind == "text":
            title, text = "", plain_text_to_markdown(decode_utf8(raw))
        else:
            text = normalize_markdown(decode_utf8(raw))
            title = markdown_title(text, "")
        if has_control_tokens(text) or has_control_tokens(title):
            text, title = strip_control_tokens(text), strip_control_tokens(title)
            result.issues.append(
                ImportIssue(raw.path, None, "chat-template control tokens removed", "warning")
            )
        title = title or fallback
        chunks = chunk_markdown(text, title, self.settings.chunk_tokens)
        if not chunks:
            raise ReadError("no text found in the document")
        counts = self.kg.add_document(
            src, title, raw.kind, chunks, candidates=self.settings.candidate_entities
        )
        if self.settings.extract_relations:
            counts.extracted = extract_document(self.conn, src, title, chunks).relations
        result.counts.add(counts)

    def _import_formulas(self, result: FileResult, raw: RawFile, root: Path, src: int) -> None:
        specs, issues = load_formula_file(raw.path)
        result.issues.extend(issues)
        for spec in specs:
            entity_id = self.kg.resolve(spec.entity) if spec.entity else None
            if spec.entity and entity_id is None:
                result.issues.append(
                    ImportIssue(
                        raw.path,
                        None,
                        f"formula {spec.id}: unknown entity {spec.entity!r}",
                        "warning",
                    )
                )
            if self.kg.add_formula(spec, src, entity_id):
                result.counts.formulas += 1
            else:
                result.issues.append(
                    ImportIssue(raw.path, None, f"formula {spec.id}: id already defined elsewhere")
                )

    def _import_triples(self, result: FileResult, raw: RawFile, root: Path, src: int) -> None:
        added: list[int] = []
        for line, row in _rows(raw):
            if isinstance(row, str):
                result.issues.append(ImportIssue(raw.path, line, row))
                continue
            problem = self._add_triple(row, raw.path, root, src, line)
            if isinstance(problem, int):
                added.append(problem)
            elif problem.startswith("duplicate"):
                result.issues.append(ImportIssue(raw.path, line, problem, "warning"))
            else:
                result.issues.append(ImportIssue(raw.path, line, problem))
        self.kg.link_evidence(added)
        result.counts.relations += len(added)

    def _add_triple(
        self, row: dict[str, str], path: Path, root: Path, src: int, line: int
    ) -> int | str:
        """The new relation's id, or what is wrong with the row."""
        subject, predicate, obj = (
            str(row.get(k) or "").strip() for k in ("subject", "predicate", "object")
        )
        if not (subject and predicate and obj):
            return "subject, predicate and object are all required"
        if predicate not in PREDICATES:
            return f"unknown predicate {predicate!r} (see the predicate vocabulary)"
        ids = []
        for name in (subject, obj):
            entity_id = self.kg.resolve(name)
            if entity_id is None:
                return f"unknown entity {name!r} (declare it in an entity file)"
            ids.append(entity_id)
        types = [
            self.conn.execute("SELECT type FROM entities WHERE id = ?", (i,)).fetchone()[0]
            for i in ids
        ]
        allowed_s, allowed_o = PREDICATES[predicate]
        if allowed_s is not None and types[0] not in allowed_s:
            return f"{predicate} cannot start at a {types[0]} ({subject!r})"
        if allowed_o is not None and types[1] not in allowed_o:
            return f"{predicate} cannot end at a {types[1]} ({obj!r})"
        evidence = self._evidence_path(str(row.get("source") or "").strip(), path, root)
        relation_id = self.kg.add_relation(ids[0], predicate, ids[1], src, line, evidence)
        if relation_id is None:
            return f"duplicate relation {subject} -{predicate}-> {obj} (already imported)"
        return relation_id

    @staticmethod
    def _evidence_path(source: str, path: Path, root: Path) -> str | None:
        if not source:
            return None
        for base in (root, path.parent, path.parent.parent):
            candidate = (base / source).resolve()
            if candidate.exists():
                return str(candidate)
        return str((root / source).resolve())


def _clean_value(value: object) -> object:
    if isinstance(value, str):
        return strip_control_tokens(value)
    if isinstance(value, list):
        return [_clean_value(v) for v in value]
    return value


def _unreadable(exc: Exception) -> ReadError:
    """A ReadError for an unexpected failure on one file (the others still import)."""
    if isinstance(exc, RecursionError):
        return ReadError("nested too deeply to read (RecursionError)", getattr(exc, "line", None))
    if isinstance(exc, MemoryError):
        return ReadError("too large to read (out of memory)")
    return ReadError(f"cannot import: {type(exc).__name__}: {exc}", getattr(exc, "line", None))


def import_paths(
    conn: sqlite3.Connection, paths: Iterable[Path], settings: IngestSettings
) -> ImportReport:
    return Importer(conn, settings).run(paths)
