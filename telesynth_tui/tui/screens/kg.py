"""Knowledge graph: search entities and document text, an entity's neighbourhood as a tree with
its description and evidence passages, and the shortest relation path between two entities."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Header, Input, Static, Tree

from telesynth_tui.tui.base import BaseScreen

MAX_RESULTS = 40  # entities and passages each
MAX_EVIDENCE = 8  # evidence passages shown under an entity
EXPAND_UP_TO = 6  # relation groups with at most this many entities start expanded
MAX_CANDIDATES = 200  # extracted relations listed for review


class KgScreen(BaseScreen):
    BINDINGS = [
        Binding("slash", "focus_search", "Search", key_display="/"),
        Binding("p", "focus_path", "Path"),
        Binding("t", "focus_tree", "Tree"),
        Binding("escape", "leave_input", "Back to results", show=False),
        Binding("c", "candidates", "Extracted relations to review", show=False),
        Binding("a", "decide('accepted')", "Accept the extracted relation", show=False),
        Binding("x", "decide('rejected')", "Reject the extracted relation", show=False),
    ]
    AUTO_FOCUS = "#kg-results"
    DEFAULT_CSS = """
    KgScreen #kg-inputs { height: 3; }
    KgScreen #kg-search { width: 1fr; }
    KgScreen #kg-from, KgScreen #kg-to { width: 17; }
    KgScreen #kg-path-button { width: 8; min-width: 8; }
    KgScreen #kg-results { width: 40; height: 1fr; }
    KgScreen #kg-right { width: 1fr; }
    KgScreen #kg-tree { height: 1fr; min-height: 4; }
    KgScreen #kg-detail-box { height: 1fr; border-top: solid $primary-darken-2; }
    KgScreen #kg-detail { padding: 0 1; }
    """

    class Searched(Message):
        def __init__(
            self, query: str, entities: list[dict[str, Any]], chunks: list[dict[str, Any]]
        ) -> None:
            super().__init__()
            self.query = query
            self.entities = entities
            self.chunks = chunks

    class EntityLoaded(Message):
        def __init__(
            self,
            details: dict[str, Any],
            groups: list[dict[str, Any]],
            evidence: list[dict[str, Any]],
        ) -> None:
            super().__init__()
            self.details = details
            self.groups = groups
            self.evidence = evidence

    class ChunkLoaded(Message):
        def __init__(self, chunk: dict[str, Any]) -> None:
            super().__init__()
            self.chunk = chunk

    class CandidatesLoaded(Message):
        def __init__(self, relations: list[dict[str, Any]], counts: dict[str, int]) -> None:
            super().__init__()
            self.relations = relations
            self.counts = counts

    class Decided(Message):
        def __init__(self, relation_id: int, status: str) -> None:
            super().__init__()
            self.relation_id = relation_id
            self.status = status

    class PathFound(Message):
        def __init__(self, source: str, target: str, steps: list[dict[str, Any]]) -> None:
            super().__init__()
            self.source = source
            self.target = target
            self.steps = steps

    def __init__(self) -> None:
        super().__init__()
        self._candidates: dict[int, dict[str, Any]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="kg-inputs"):
            yield Input(placeholder="search entities and text", id="kg-search")
            yield Input(placeholder="path from", id="kg-from")
            yield Input(placeholder="to", id="kg-to")
            yield Button("Path", id="kg-path-button")
        with Horizontal():
            yield DataTable(id="kg-results", cursor_type="row", zebra_stripes=True)
            with Vertical(id="kg-right"):
                yield Tree(Text("no entity open"), id="kg-tree")
                with VerticalScroll(id="kg-detail-box"):
                    yield Static(id="kg-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#kg-results", DataTable)
        table.add_column("name / passage", width=25, key="name")
        table.add_column("type", width=9, key="type")
        table.add_row(Text("press / to search", style="dim"), "")
        self.query_one("#kg-tree", Tree).show_root = True
        self.query_one("#kg-detail", Static).update(
            Text(
                "Search (/) for an entity or words of the documents, press Enter on a result to "
                "open it. Enter on an entity in the tree opens that entity. p: shortest path "
                "between two entities.",
                style="dim",
            )
        )

    def commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand(
            "Search the knowledge graph (/)",
            "Entities and document passages",
            self.action_focus_search,
        )
        yield SystemCommand(
            "Review extracted relations (c)",
            "Candidates from your documents: a accepts, x rejects",
            self.action_candidates,
        )
        yield SystemCommand(
            "Shortest path between two entities (p)",
            "The chain of relations linking two entities",
            self.action_focus_path,
        )

    # --- actions ---------------------------------------------------------------------------

    def action_focus_search(self) -> None:
        self.query_one("#kg-search", Input).focus()

    def action_focus_path(self) -> None:
        self.query_one("#kg-from", Input).focus()

    def action_focus_tree(self) -> None:
        self.query_one("#kg-tree", Tree).focus()

    def action_leave_input(self) -> None:
        self.query_one("#kg-results", DataTable).focus()

    def action_candidates(self) -> None:
        self.load_candidates()

    def action_decide(self, decision: str) -> None:
        table = self.query_one("#kg-results", DataTable)
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or ""
        kind, _, raw_id = key.partition(":")
        if kind != "r":
            self.notify(
                "Press c to list extracted relations, then a or x on one.", severity="warning"
            )
            return
        self.decide(int(raw_id), decision)

    @on(Input.Submitted, "#kg-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.search(event.value.strip())

    @on(Input.Submitted, "#kg-from")
    def _from_submitted(self) -> None:
        self.query_one("#kg-to", Input).focus()

    @on(Input.Submitted, "#kg-to")
    @on(Button.Pressed, "#kg-path-button")
    def _path_requested(self) -> None:
        source = self.query_one("#kg-from", Input).value.strip()
        target = self.query_one("#kg-to", Input).value.strip()
        if not source or not target:
            self.notify("Type an entity in both path fields (from, to).", severity="warning")
            return
        self.find_path(source, target)

    @on(DataTable.RowHighlighted, "#kg-results")
    def _result_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value or ""
        if key.startswith("r:") and int(key[2:]) in self._candidates:
            self._show_detail(_candidate_text(self._candidates[int(key[2:])]))

    @on(DataTable.RowSelected, "#kg-results")
    def _result_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value or ""
        kind, _, raw_id = key.partition(":")
        if kind == "r":
            candidate = self._candidates.get(int(raw_id))
            if candidate:
                self.open_entity_named(str(candidate["subject"]))
        elif kind == "e":
            self.open_entity(int(raw_id))
        elif kind == "c":
            self.open_chunk(int(raw_id))

    @on(Tree.NodeSelected, "#kg-tree")
    def _tree_selected(self, event: Tree.NodeSelected[Any]) -> None:
        data = event.node.data
        if isinstance(data, dict) and data.get("open"):
            self.open_entity_named(str(data["open"]))

    # --- workers (each opens its own connection) -------------------------------------------

    @work(thread=True, exclusive=True, group="kg-search", exit_on_error=False)
    def search(self, query: str) -> None:
        from telesynth_tui.graph.queries import find_entities, search_chunks

        conn = self.backends.connect()
        try:
            entities = find_entities(conn, query, MAX_RESULTS)
            chunks = search_chunks(conn, query, MAX_RESULTS)
        finally:
            conn.close()
        self.post_message(self.Searched(query, entities, chunks))

    @work(thread=True, exclusive=True, group="kg-open", exit_on_error=False)
    def open_entity(self, entity_id: int) -> None:
        self._load_entity(entity_id=entity_id)

    @work(thread=True, exclusive=True, group="kg-open", exit_on_error=False)
    def open_entity_named(self, name: str) -> None:
        self._load_entity(name=name)

    def _load_entity(self, entity_id: int | None = None, name: str = "") -> None:
        from telesynth_tui.errors import TelesynthError
        from telesynth_tui.graph.queries import entity_details, entity_evidence, relation_groups
        from telesynth_tui.graph.store import KnowledgeGraph

        conn = self.backends.connect()
        try:
            if entity_id is None:
                entity_id = KnowledgeGraph(conn).resolve(name)
                if entity_id is None:
                    raise TelesynthError(f"no entity named {name!r}")
            details = entity_details(conn, entity_id)
            message = self.EntityLoaded(
                details, relation_groups(details), entity_evidence(conn, details)
            )
        finally:
            conn.close()
        self.post_message(message)

    @work(thread=True, exclusive=True, group="kg-open", exit_on_error=False)
    def open_chunk(self, chunk_id: int) -> None:
        from telesynth_tui.graph.queries import evidence_chunks

        conn = self.backends.connect()
        try:
            chunks = evidence_chunks(conn, [chunk_id])
        finally:
            conn.close()
        if chunks:
            self.post_message(self.ChunkLoaded(chunks[0]))

    @work(thread=True, exclusive=True, group="kg-search", exit_on_error=False)
    def load_candidates(self) -> None:
        from telesynth_tui.graph.candidates import list_candidates, review_counts

        conn = self.backends.connect()
        try:
            message = self.CandidatesLoaded(
                list_candidates(conn, "candidate", MAX_CANDIDATES), review_counts(conn)
            )
        finally:
            conn.close()
        self.post_message(message)

    @work(thread=True, group="kg-review", exit_on_error=False)
    def decide(self, relation_id: int, decision: str) -> None:
        from telesynth_tui.graph.candidates import review

        conn = self.backends.connect()
        try:
            done = review(conn, [(relation_id, decision)])[0]
        finally:
            conn.close()
        self.post_message(self.Decided(int(done["id"]), str(done["status"])))

    @work(thread=True, exclusive=True, group="kg-path", exit_on_error=False)
    def find_path(self, source: str, target: str) -> None:
        from telesynth_tui.graph.queries import path_between

        conn = self.backends.connect()
        try:
            steps = path_between(conn, source, target)
        finally:
            conn.close()
        self.post_message(self.PathFound(source, target, steps))

    # --- results back on the UI thread -----------------------------------------------------

    def on_kg_screen_searched(self, message: Searched) -> None:
        table = self.query_one("#kg-results", DataTable)
        table.clear()
        for entity in message.entities:
            name = Text(entity["name"])
            if entity["matched_alias"]:
                name.append(f" ({entity['matched_alias']})", style="dim")
            if entity["status"] == "candidate":
                name.stylize("italic")
            table.add_row(name, entity["type"], key=f"e:{entity['id']}")
        for chunk in message.chunks:
            table.add_row(
                _passage_label(chunk), Text("passage", style="dim"), key=f"c:{chunk['id']}"
            )
        if not message.entities and not message.chunks:
            table.add_row(Text(f"nothing matches {message.query!r}", style="dim"), "")
            return
        table.move_cursor(row=0)
        table.focus()
        first = message.entities[0] if message.entities else None
        if first is not None:
            self.open_entity(int(first["id"]))
        else:
            self.open_chunk(int(message.chunks[0]["id"]))

    def on_kg_screen_candidates_loaded(self, message: CandidatesLoaded) -> None:
        table = self.query_one("#kg-results", DataTable)
        table.clear()
        self._candidates = {int(r["id"]): r for r in message.relations}
        for r in message.relations:
            table.add_row(_candidate_label(r), f"{r['confidence']:.2f}", key=f"r:{r['id']}")
        c = message.counts
        summary = f"{c['candidate']} to review, {c['accepted']} accepted, {c['rejected']} rejected"
        if not message.relations:
            table.add_row(Text("no extracted relation waits for review", style="dim"), "")
            self._show_detail(Text(summary, style="dim"))
            return
        table.move_cursor(row=0)
        table.focus()
        self.notify(f"{summary}. a accepts, x rejects the highlighted relation.")

    def on_kg_screen_decided(self, message: Decided) -> None:
        table = self.query_one("#kg-results", DataTable)
        key = f"r:{message.relation_id}"
        candidate = self._candidates.get(message.relation_id)
        if candidate is None or key not in {k.value for k in table.rows}:
            return
        candidate["status"] = message.status
        table.update_cell(key, "name", _candidate_label(candidate))
        row = table.get_row_index(key)
        if table.cursor_row == row and row + 1 < table.row_count:
            table.move_cursor(row=row + 1)
        self.notify(
            f"{candidate['subject']} -{candidate['predicate']}-> "
            f"{candidate['object']}: {message.status}"
        )

    def on_kg_screen_entity_loaded(self, message: EntityLoaded) -> None:
        details = message.details
        tree: Tree[Any] = self.query_one("#kg-tree", Tree)
        tree.clear()
        tree.root.set_label(Text.assemble((details["name"], "bold"), f" ({details['type']})"))
        tree.root.data = {"entity": details["name"]}
        for group in message.groups:
            node = tree.root.add(
                Text.assemble(group["label"], (f" {len(group['entities'])}", "dim")),
                data={"group": group["label"]},
                expand=len(group["entities"]) <= EXPAND_UP_TO,
            )
            for other in group["entities"]:
                node.add_leaf(Text(other), data={"open": other})
        if not message.groups:
            tree.root.add_leaf(Text("no relations", style="dim"))
        tree.root.expand()
        tree.move_cursor(tree.root)
        self._show_detail(_entity_text(details, message.evidence))

    def on_kg_screen_chunk_loaded(self, message: ChunkLoaded) -> None:
        text = Text()
        text.append(_where(message.chunk) + "\n", style="bold")
        text.append(message.chunk["text"].strip())
        self._show_detail(text)

    def on_kg_screen_path_found(self, message: PathFound) -> None:
        text = Text()
        text.append(f"Path {message.source} → {message.target}", style="bold")
        if not message.steps:
            text.append("\nno path: the two entities are not connected", style="italic")
        else:
            text.append(f" ({len(message.steps)} steps)\n", style="dim")
            for step in message.steps:
                text.append(f"{step['subject']} ")
                text.append(f"-{step['predicate']}->", style="bold")
                text.append(f" {step['object']}\n")
        self._show_detail(text)

    def _show_detail(self, text: Text) -> None:
        self.query_one("#kg-detail", Static).update(text)
        self.query_one("#kg-detail-box", VerticalScroll).scroll_home(animate=False)


def _candidate_label(r: dict[str, Any]) -> Text:
    mark = {"accepted": "✓ ", "rejected": "✗ "}.get(str(r["status"]), "")
    label = Text(mark, style="bold")
    label.append(f"{r['subject']} -{r['predicate']}-> {r['object']}")
    if r["status"] == "rejected":
        label.stylize("strike dim")
    return label


def _candidate_text(r: dict[str, Any]) -> Text:
    text = Text()
    text.append(f"{r['subject']} ({r['subject_type']})\n", style="bold")
    text.append(f"  -{r['predicate']}->\n", style="bold")
    text.append(f"{r['object']} ({r['object_type']})\n\n", style="bold")
    text.append(
        f"{r['status']} · confidence {r['confidence']:.2f} · rule {r['rule']} · "
        f"{', '.join(r['extractors'])}\n",
        style="dim",
    )
    text.append(f"{str(r['source']).rsplit('/', 1)[-1]}\n\n", style="dim")
    text.append(str(r["evidence"]))
    text.append("\n\na accepts, x rejects; Enter opens the subject", style="dim")
    return text


def _where(chunk: dict[str, Any]) -> str:
    """'Document › heading' of a passage (headings usually start with the document title)."""
    heading = str(chunk["heading"] or "").replace(" > ", " › ")
    document = str(chunk["document"] or "")
    if heading.startswith(document):
        return heading
    return f"{document} › {heading}" if heading else document


def _passage_label(chunk: dict[str, Any]) -> Text:
    """A passage in the results list: its own section first (the column is narrow)."""
    section = str(chunk["heading"] or "").split(" > ")[-1]
    document = str(chunk["document"] or "")
    label = Text("¶ ")
    if section and section != document:
        label.append(section)
        label.append(f" · {document}", style="dim")
    else:
        label.append(document)
    return label


def _entity_text(details: dict[str, Any], evidence: list[dict[str, Any]]) -> Text:
    text = Text()
    text.append(details["name"], style="bold")
    text.append(f" · {details['type']}", style="dim")
    if details["status"] == "candidate":
        text.append(" · candidate", style="dim italic")
    if details["aliases"]:
        text.append(f" · aka {', '.join(details['aliases'])}", style="dim")
    text.append("\n")
    text.append(details["description"] or "(no description)")
    for formula in details["formulas"]:
        text.append(f"\nformula {formula['name']}: ", style="bold")
        text.append(f"{formula['expression']} [{formula['output_unit'] or '-'}]")
    text.append(f"\n\nEvidence ({len(evidence)} passages)", style="bold underline")
    if not evidence:
        text.append("\nno passage states a relation of this entity", style="dim")
    for chunk in evidence[:MAX_EVIDENCE]:
        text.append(f"\n\n{_where(chunk)}\n", style="bold")
        text.append(chunk["text"].strip())
    if len(evidence) > MAX_EVIDENCE:
        text.append(f"\n\n… {len(evidence) - MAX_EVIDENCE} more passages", style="dim")
    return text
