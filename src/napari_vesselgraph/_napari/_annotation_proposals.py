"""*Where to annotate next* in the *Annotate patches* widget: the proposals section.

:class:`ProposalsMixin` builds the section, shows the patches a proposal run suggests as the
``"<image> proposals"`` Shapes layer (labelled with rank and score) and turns the accepted ones into patches.
The run itself (:func:`~napari_vesselgraph._napari._annotation_widget.run_proposal` in a ``thread_worker``) is
started by ``AnnotationWidget.propose``.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton

from ..errors import VesselGraphError
from ._annotation_layers import _rectangles, _set_rectangles
from ._qt_parts import spin_box
from ._widget_utils import notify

PROPOSAL_COLOR = "cyan"


class ProposalsMixin:
    """The proposals section of the Annotate patches widget (it expects the widget's ``viewer``, ``store``,
    ``plan``, ``add_patch`` and ``_require_store``)."""

    def _build_proposals(self, outer) -> None:
        box = QGroupBox("Where to annotate next")
        form = QFormLayout(box)
        row = QHBoxLayout()
        self.propose_spin = spin_box(1, 50, 5, "How many patches to propose")
        self.propose_button = QPushButton("Propose patches")
        self.propose_button.setToolTip(
            "Run the model over the image and propose the patches it is least sure about (node and edge "
            "confidences near its thresholds, overlapping windows that disagree), away from the patches you have. "
            "Uses the checkpoint chosen in Predict graph, else the one that suits the image."
        )
        self.propose_button.clicked.connect(self._propose_clicked)
        row.addWidget(self.propose_spin)
        row.addWidget(self.propose_button, 1)
        form.addRow("Patches", row)
        self.propose_progress = QProgressBar()
        self.propose_progress.setVisible(False)
        form.addRow(self.propose_progress)
        self.accept_button = QPushButton("Accept selected proposals")
        self.accept_button.setToolTip(
            "Add the proposals selected in the proposals layer (all of them when none is selected) as patches"
        )
        self.accept_button.clicked.connect(lambda: self.accept_proposals())
        form.addRow(self.accept_button)
        self.proposal_label = QLabel("")
        self.proposal_label.setWordWrap(True)
        form.addRow(self.proposal_label)
        outer.addWidget(box)

    # ------------------------------------------------------------ proposals: where to annotate next
    def _proposal_checkpoint(self):
        """The checkpoint chosen in Predict graph when it fits the image's dimensionality, else None (the worker
        picks the one that suits the image)."""
        from ..checkpoints import checkpoint_ndim

        entry = self.state.checkpoint or {}
        if entry.get("path") and checkpoint_ndim(entry.get("meta") or {}) == self.plan.spatial_ndim:
            return str(entry["path"])
        return None

    def _propose_clicked(self) -> None:
        if self.propose_worker is not None:
            self.cancel_proposal()
        else:
            self.propose()

    def cancel_proposal(self) -> None:
        if self._propose_cancel is not None:
            self._propose_cancel.set()
            self.proposal_label.setText("Cancelling…")

    def is_proposing(self) -> bool:
        return self.propose_worker is not None

    def _on_propose_progress(self, done: int, total: int, info: dict) -> None:
        if total > 0:
            self.propose_progress.setRange(0, total)
            self.propose_progress.setValue(done)
            self.proposal_label.setText(f"Running the model over the image: window {done} of {total}…")

    def _on_proposed(self, result: dict) -> None:
        if result.get("status") == "cancelled":
            self.proposal_label.setText("Cancelled.")
            return
        if result.get("status") != "ok":
            notify("error", f"Could not propose patches: {result.get('message')}")
            self.proposal_label.setText(f"Failed: {result.get('message')}")
            return
        props = list(result["proposals"])
        if self.store is None:
            return
        self.show_proposals(props)
        if props:
            text = (f"{len(props)} patch(es) proposed by {result['checkpoint']} in {result['seconds']:.0f} s, most "
                    f"uncertain first ('#1'). Select some in the proposals layer and press Accept, or accept all. "
                    f"#1: {props[0].why}.")  # fmt: skip
        else:
            text = (f"{result['checkpoint']} found no uncertain place outside your patches "
                    "(nothing near its thresholds, no disagreement).")  # fmt: skip
        self.proposal_label.setText(text)

    def _on_propose_error(self, exc: Exception) -> None:
        msg = f"{type(exc).__name__}: {exc}"
        notify("error", f"Proposing patches failed unexpectedly ({msg}).")
        self.proposal_label.setText(f"Failed: {msg}")

    def _on_propose_finished(self) -> None:
        self.propose_worker = None
        self._propose_cancel = None
        self.propose_button.setText("Propose patches")
        self.propose_progress.setVisible(False)
        from ._widget_utils import free_gpu_memory

        free_gpu_memory()

    def show_proposals(self, proposals) -> None:
        """Show ``proposals`` (``annotations.Proposal``) as the proposals layer (replacing earlier ones)."""

        self.proposals = list(proposals)
        shapes, rank, score, why = [], [], [], []
        for p in self.proposals:
            rects = _rectangles(p.origin, p.size)
            shapes += rects
            rank += [int(p.details.get("rank", 0))] * len(rects)
            score += [float(p.score) if np.isfinite(p.score) else 0.0] * len(rects)
            why += [p.why] * len(rects)
        features = {"rank": np.array(rank, dtype=int), "score": np.array(score, float),
                    "why": np.array(why, dtype=object)}  # fmt: skip
        layer = self.proposals_layer
        self._syncing += 1
        try:
            if not shapes:
                if layer is not None and layer in self.viewer.layers:
                    self.viewer.layers.remove(layer)
                self.proposals_layer = None
                return
            if layer is None or layer not in self.viewer.layers:
                text = {"string": "#{rank} ({score:.1f})", "anchor": "upper_left", "color": PROPOSAL_COLOR}
                layer = self._new_box_layer("proposals", PROPOSAL_COLOR, features, text, shapes)
                self.viewer.add_layer(layer)
                self.proposals_layer = layer
            else:
                _set_rectangles(layer, shapes, features, PROPOSAL_COLOR)
        finally:
            self._syncing -= 1
            self._update_accept_enabled()

    def clear_proposals(self) -> None:
        self.show_proposals([])
        self.proposal_label.setText("")

    def _update_accept_enabled(self) -> None:
        self.accept_button.setEnabled(bool(self.proposals) and self.store is not None)

    def selected_proposals(self) -> list:
        """The proposals whose rectangles are selected in the proposals layer."""
        layer = self.proposals_layer
        if layer is None or not self.proposals:
            return []
        ranks = {int(layer.features["rank"].iloc[i]) for i in layer.selected_data if i < len(layer.features)}
        return [p for p in self.proposals if int(p.details.get("rank", 0)) in ranks]

    def accept_proposals(self, proposals=None) -> list[str]:
        """Add ``proposals`` (default: the selected ones, else all) as patches, as a drawn rectangle is added (the
        'Start from' graph cut to the patch); they leave the proposals layer. Returns the new patch ids."""
        try:
            self._require_store()
        except VesselGraphError as e:
            notify("error", str(e))
            return []
        chosen = list(proposals) if proposals is not None else (self.selected_proposals() or list(self.proposals))
        if not chosen:
            self._status("No proposals to accept: press Propose patches first.")
            return []
        ids = []
        try:
            for p in chosen:
                ids.append(self.add_patch(center=p.center))
        except VesselGraphError as e:
            notify("error", str(e))
        done = {id(p) for p in chosen[: len(ids)]}
        self.show_proposals([p for p in self.proposals if id(p) not in done])
        left = len(self.proposals)
        self.proposal_label.setText(
            f"Accepted {len(ids)} proposal(s) as {', '.join(ids)}." + (f" {left} left." if left else "")
        )
        return ids
