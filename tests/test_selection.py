"""Selection: rank normalisation, the λ schedule, criteria, scopes and initial lines."""

from __future__ import annotations

import numpy as np
import pytest

from graftonnx.errors import BadInput
from graftonnx.planning import (
    Selection,
    count_for,
    fit_lines,
    lambda_schedule,
    rank_normalise,
    select_units,
)
from graftonnx.planning.select import slice_sizes


def test_rank_normalise_handles_ties_and_range():
    r = rank_normalise(np.array([5.0, 1.0, 1.0, 9.0]))
    np.testing.assert_allclose(r, [2 / 3, 1 / 6, 1 / 6, 1.0])
    assert rank_normalise(np.array([3.0])).tolist() == [0.5]


def test_lambda_schedule_decays_from_one_to_zero():
    np.testing.assert_allclose(lambda_schedule(5), [1.0, 0.75, 0.5, 0.25, 0.0])


def test_instability_only_takes_most_unstable():
    s_u = np.array([0.0, 0.9, 0.5, 0.2])
    s_i = np.array([0.0, 1.0, 0.0, 0.0])  # significance must not matter
    (picked,) = select_units([s_u], [s_i], Selection("instability", ratio=0.5))
    assert picked.tolist() == [1, 2]


def test_significance_only_takes_least_significant():
    s_u = np.array([1.0, 1.0, 0.0, 0.0])
    s_i = np.array([0.3, 0.9, 0.1, 0.5])
    (picked,) = select_units([s_u], [s_i], Selection("significance", ratio=0.5))
    assert picked.tolist() == [0, 2]


def test_combined_starts_unstable_then_insignificant():
    # 10 units: unit 0 most unstable but very significant; unit 9 stable but least significant
    s_u = np.linspace(1.0, 0.0, 10)
    s_i = np.linspace(1.0, 0.0, 10)
    (two,) = select_units([s_u], [s_i], Selection("combined", count=2, stages=2))  # default: target
    assert two.tolist() == [0, 9]  # slice 1 (λ=1) takes the most unstable, slice 2 (λ=0) the least significant


def test_total_schedule_nests_plans_and_keeps_lambda_high_for_small_grafts():
    rng = np.random.default_rng(0)
    s_u, s_i = rank_normalise(rng.random(200)), rank_normalise(rng.random(200))
    picks = {r: set(select_units([s_u], [s_i], Selection("combined", ratio=r, schedule="total"))[0].tolist())
             for r in (0.1, 0.25, 0.5, 0.75, 1.0)}
    assert picks[0.1] <= picks[0.25] <= picks[0.5] <= picks[0.75] <= picks[1.0]
    assert len(picks[0.5]) == 100
    # 10 % of the units with 5 stages over all units: all picked at λ = 1 (pure instability)
    only_u = set(select_units([s_u], [s_i], Selection("instability", ratio=0.1))[0].tolist())
    assert picks[0.1] == only_u
    # the target schedule ends every graft at λ = 0, so its 10 % graft differs from instability-only
    target = set(select_units([s_u], [s_i], Selection("combined", ratio=0.1))[0].tolist())  # default: target
    assert target != only_u


def test_slice_sizes():
    assert slice_sizes(4, 10, 2, "target") == [2, 2]
    assert slice_sizes(4, 10, 2, "total") == [4, 0]
    assert slice_sizes(7, 10, 2, "total") == [5, 2]


def test_global_vs_per_layer_counts():
    u = [np.arange(10.0), np.zeros(4)]
    i = [np.zeros(10), np.zeros(4)]
    glob = select_units(u, i, Selection("instability", ratio=0.5))
    assert sum(p.size for p in glob) == 7 and glob[0].size >= 5
    per = select_units(u, i, Selection("instability", ratio=0.5, scope="per-layer"))
    assert [p.size for p in per] == [5, 2]


def test_random_is_seeded():
    u, i = [np.zeros(100)], [np.zeros(100)]
    a = select_units(u, i, Selection("random", ratio=0.3, seed=1))[0]
    b = select_units(u, i, Selection("random", ratio=0.3, seed=1))[0]
    c = select_units(u, i, Selection("random", ratio=0.3, seed=2))[0]
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist() and a.size == 30


@pytest.mark.parametrize("kwargs,match", [({"ratio": 1.5}, "outside"), ({"ratio": -0.1}, "outside"),
                                          ({"ratio": 0.5, "count": 3}, "exactly one"),
                                          ({"count": -1, "ratio": None}, "negative"),
                                          ({"ratio": 0.5, "schedule": "fast"}, "schedule")])
def test_bad_selection(kwargs, match):
    with pytest.raises(BadInput, match=match):
        Selection(**kwargs)


def test_count_for_caps_and_rounds():
    assert count_for(10, Selection(ratio=0.25)) == 2
    assert count_for(10, Selection(ratio=None, count=50)) == 10


def test_fit_lines_exact_for_stable_units_and_least_squares_otherwise():
    rng = np.random.default_rng(0)
    z = np.stack([rng.uniform(0.5, 2, 200), rng.uniform(-2, -0.5, 200), rng.uniform(-1, 1, 200)], axis=1)[..., None]
    a, b = fit_lines(z, 3)
    np.testing.assert_allclose(a[:2], [1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(b[:2], [0.0, 0.0], atol=1e-9)
    coef = np.polyfit(z[:, 2, 0], np.maximum(z[:, 2, 0], 0), 1)
    np.testing.assert_allclose([a[2], b[2]], coef, atol=1e-9)


def test_ratio_counts_neurons_when_units_differ_in_size():
    rng = np.random.default_rng(3)
    u = [rng.uniform(size=4), rng.uniform(size=40)]  # 4 big channels (100 neurons each), 40 small units
    i = [rng.uniform(size=4), rng.uniform(size=40)]
    w = [np.full(4, 100), np.ones(40)]
    for crit in ("combined", "instability", "random"):
        picked = select_units(u, i, Selection(crit, ratio=0.5, schedule="total"), w)
        neurons = 100 * picked[0].size + picked[1].size
        assert abs(neurons - 220) <= 50, (crit, neurons)  # within half a big channel of 50 % of 440
    unweighted = select_units(u, i, Selection("instability", ratio=0.5))
    assert sum(p.size for p in unweighted) == 22  # without weights a ratio counts units, as before
    assert [p.tolist() for p in select_units(u, i, Selection("instability", count=5), w)] == \
        [p.tolist() for p in select_units(u, i, Selection("instability", count=5))]  # count counts units


@pytest.mark.slow
def test_auto_granularity_grafts_channels_of_feature_maps_and_half_the_neurons():
    from conftest import model_path

    import graftonnx.api as g

    net = model_path("resnet_2b")
    info = g.inspect(net)
    with pytest.warns(UserWarning):
        plan = g.plan(net, None, g.GraftSettings(ratio=0.5, granularity="auto", eps=0.002))
    assert {lp.granularity for lp in plan.layers if len(info.site(lp.site).shape) > 1} == {"channel"}
    assert {lp.granularity for lp in plan.layers if len(info.site(lp.site).shape) == 1} <= {"neuron"}
    total = sum(s.size for s in info.relus)
    biggest = max(s.per_channel for s in info.relus)
    assert abs(plan.grafted_neurons(info) - total / 2) <= biggest
    assert plan.provenance.ratio_counts == "neurons"
