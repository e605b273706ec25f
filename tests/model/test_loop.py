"""The shared training loop (model.loop) and the model's parameter groups (Relationformer.param_groups)."""

import math

import pytest

torch = pytest.importorskip("torch")

from napari_vesselgraph.model import loop as L
from napari_vesselgraph.model.config import ModelConfig
from napari_vesselgraph.model.network import Relationformer

TINY = {"patch_size": [32, 32], "backbone_channels": [8, 16, 32], "stride": 4, "hidden": 32, "heads": 2,
        "ffn": 64, "query_grid": [4, 4], "enc_layers": 1, "dec_layers": 2}  # fmt: skip


# ------------------------------------------------------------------ parameter groups
def _model(**kw):
    return Relationformer(ModelConfig.from_dict({"ndim": 2, "in_channels": 1, **TINY, **kw}))


@pytest.mark.parametrize("kw", [{}, {"relation_line": 4}, {"dense_head": True}])
@pytest.mark.parametrize("translator", [False, True])
def test_every_parameter_is_in_exactly_one_nonempty_group(kw, translator):
    model = _model(**kw)
    if translator:
        from napari_vesselgraph.adapt.translate import DEFAULT_TRANSLATOR, attach_translator, build_translator

        attach_translator(model, build_translator({"ndim": 2, "channels": 1, **DEFAULT_TRANSLATOR}))
    groups = model.param_groups()
    assert set(groups) == {"backbone", "input_proj", "encoder", "decoder", "heads"} | (
        {"translator"} if translator else set()
    )
    assert all(groups.values()), [k for k, v in groups.items() if not v]
    ids = [id(p) for ps in groups.values() for p in ps]
    assert len(ids) == len(set(ids))  # no parameter in two groups
    assert set(ids) == {id(p) for p in model.parameters()}  # none in no group
    # each group lists its parameters in model order (the optimiser state of a saved run relies on it)
    order = {id(p): k for k, p in enumerate(model.parameters())}
    for ps in groups.values():
        assert [order[id(p)] for p in ps] == sorted(order[id(p)] for p in ps)
    assert {id(p) for p in groups["backbone"]} == {id(p) for p in model.backbone.parameters()}


def test_a_parameter_in_no_group_is_an_error():
    model = _model()
    model.add_module("new_head", torch.nn.Linear(2, 2))  # a layer nobody put in a group
    with pytest.raises(RuntimeError, match="no group"):
        model.param_groups()


def test_an_empty_group_is_an_error(monkeypatch):
    model = _model()
    groups = Relationformer.module_groups(model)
    monkeypatch.setattr(Relationformer, "module_groups", lambda self: {**groups, "encoder": []})
    with pytest.raises(RuntimeError, match="no group|empty"):
        model.param_groups()


@pytest.mark.parametrize(
    ("layers", "trained", "frozen"),
    [
        ("all", ["backbone", "encoder", "decoder", "heads"], []),
        ("decoder+heads", ["decoder", "heads"], ["backbone", "input_proj", "encoder"]),
        ("heads", ["heads"], ["backbone", "input_proj", "encoder", "decoder"]),
    ],
)
def test_adaptation_trains_the_groups_it_names(layers, trained, frozen):
    from napari_vesselgraph.adapt.loop import select_trainable

    model = _model(relation_line=4)
    keep = {id(p) for p in select_trainable(model, layers)}
    groups = model.param_groups()
    for g in trained:
        assert all(id(p) in keep and p.requires_grad for p in groups[g]), g
    for g in frozen:
        assert not any(id(p) in keep or p.requires_grad for p in groups[g]), g
    assert id(model.line_proj.weight) in keep  # the relation head's line map is a head


# ------------------------------------------------------------------ the loop
class Cancel:
    def __init__(self, after: int):
        self.after, self.calls = after, 0

    def is_set(self) -> bool:
        self.calls += 1
        return self.calls > self.after


def _linear_job(**kw):
    torch.manual_seed(0)
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def step_fn(loop):
        loss = net(torch.ones(1, 2)).pow(2).sum()
        return L.StepOutput(logs={"loss": float(loss.detach())}, loss=loss)

    return net, opt, step_fn


def test_loop_steps_validates_and_reports(monkeypatch):
    freed = []
    monkeypatch.setattr(L, "free_device", lambda d: freed.append(d))
    _net, opt, step_fn = _linear_job()
    seen, vals, lrs = [], [], []

    def validate(loop, reason):
        vals.append((loop.step, reason))
        return {"node_f1": 0.5, "edge_f1": 0.25, "smd": 0.1, "score": 0.375}

    loop = L.TrainingLoop(
        max_steps=5, optimizer=opt, lr_schedule=L.warmup_cosine(2, 0.1), validate=validate, validate_every=2,
        progress=lambda d, t, i: seen.append((d, t, i)), log=lambda s: None, device="cuda:0",
        on_step=lambda loop, logs, skipped: lrs.append(loop.lr()),
    )  # fmt: skip
    assert loop.run(step_fn) == "max_steps"
    assert [d for d, _, _ in seen] == [1, 2, 3, 4, 5] and {t for _, t, _ in seen} == {5}
    assert vals == [(2, "periodic"), (4, "periodic"), (5, "final")]
    assert "val" in seen[1][2] and "val" not in seen[0][2] and seen[1][2]["val"]["node_f1"] == 0.5
    assert set(seen[0][2]) == {"loss", "elapsed", "step"}
    # warm-up over 2 steps, then a cosine down to a tenth, over the fraction of the run done before each step
    expect = [0.05, 0.1] + [0.1 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / 5))) for s in (2, 3, 4)]
    assert lrs == pytest.approx(expect)
    assert freed == ["cuda:0"]  # GPU memory freed once, at the end


def test_loop_cancel_is_checked_once_per_step_and_skips_the_final_validation():
    _net, opt, step_fn = _linear_job()
    vals = []
    cancel = Cancel(3)
    loop = L.TrainingLoop(max_steps=50, optimizer=opt, cancel=cancel, validate=lambda lp, r: vals.append(r),
                          validate_every=10, final_validation="unless_cancelled", log=lambda s: None)  # fmt: skip
    assert loop.run(step_fn) == "cancelled" and loop.step == 3 and cancel.calls == 4 and vals == []
    loop = L.TrainingLoop(max_steps=50, optimizer=opt, cancel=Cancel(3), validate=lambda lp, r: vals.append(r),
                          validate_every=10, final_validation="always", log=lambda s: None)  # fmt: skip
    loop.run(step_fn)
    assert vals == ["final"]


def test_loop_time_budget_counts_time_before_a_resume():
    _net, opt, step_fn = _linear_job()
    stops = []
    loop = L.TrainingLoop(max_steps=50, step=7, budget_s=10.0, elapsed_before=11.0, optimizer=opt,
                          on_stop=lambda lp, r: stops.append((lp.step, r)), log=lambda s: None)  # fmt: skip
    assert loop.run(step_fn) == "time budget" and stops == [(7, "time budget")]
    assert loop.frac() >= 1.0


def test_loop_skips_a_non_finite_loss():
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    w0 = net.weight.detach().clone()
    logs, updates, skips = [], [], []

    def step_fn(loop):
        loss = net(torch.ones(1, 2)).sum() * float("nan")
        return L.StepOutput(logs={"loss": float("nan")}, loss=loss)

    loop = L.TrainingLoop(max_steps=2, optimizer=opt, log=logs.append, after_update=lambda lp: updates.append(1),
                          on_step=lambda lp, lg, skipped: skips.append(skipped))  # fmt: skip
    loop.run(step_fn)
    assert torch.equal(net.weight, w0) and updates == [] and skips == [True, True] and loop.step == 2
    assert logs == ["step 0: non-finite loss, batch skipped", "step 1: non-finite loss, batch skipped"]


def test_free_device_is_a_no_op_on_cpu():
    L.free_device("cpu")
    L.free_device(torch.device("cpu"))
    L.free_device(None)
