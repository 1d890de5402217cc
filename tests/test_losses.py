"""Uniformity and alignment are Wang & Isola's formulas; slerp stays on the sphere; slerp augmentation mixes
only within a class."""

import math

import pytest
import torch
import torch.nn.functional as F

from clipforensics.training.losses import alignment, mask_bce, slerp, slerp_augment, uniformity


def _unit_batch(seed: int, n: int = 7, dim: int = 5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, dim, generator=generator, dtype=torch.float64), dim=1)


def _pairs(n: int):
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


@pytest.mark.parametrize("t", [2.0, 0.5])
@pytest.mark.parametrize("seed", range(3))
def test_uniformity_is_log_mean_exp_of_minus_t_squared_distances_over_distinct_pairs(seed, t):
    z = _unit_batch(seed)

    terms = [math.exp(-t * float((z[i] - z[j]).pow(2).sum())) for i, j in _pairs(len(z))]

    assert uniformity(z, t=t).item() == pytest.approx(math.log(sum(terms) / len(terms)), rel=1e-12)


def test_uniformity_is_lower_for_spread_points_than_for_clustered_ones():
    spread = torch.eye(4)
    clustered = F.normalize(torch.ones(4, 4) + 0.01 * torch.eye(4), dim=1)

    assert uniformity(spread) < uniformity(clustered)


def test_uniformity_of_fewer_than_two_samples_is_zero():
    assert uniformity(_unit_batch(0, n=1)).item() == 0.0


@pytest.mark.parametrize("alpha", [2.0, 1.0])
@pytest.mark.parametrize("seed", range(3))
def test_alignment_is_mean_distance_to_the_alpha_over_same_label_pairs(seed, alpha):
    z = _unit_batch(seed)
    labels = torch.tensor([0, 1, 0, 1, 1, 0, 2])

    terms = [float((z[i] - z[j]).norm()) ** alpha for i, j in _pairs(len(z)) if labels[i] == labels[j]]

    assert alignment(z, labels, alpha=alpha).item() == pytest.approx(sum(terms) / len(terms), rel=1e-12)


def test_alignment_is_zero_for_identical_features_within_each_class():
    z = torch.cat([_unit_batch(0, n=1).repeat(3, 1), _unit_batch(1, n=1).repeat(2, 1)])
    labels = torch.tensor([0, 0, 0, 1, 1])

    assert alignment(z, labels).item() == 0.0


def test_alignment_is_zero_when_no_two_samples_share_a_label():
    assert alignment(_unit_batch(0, n=3), torch.tensor([0, 1, 2])).item() == 0.0


def test_alignment_needs_one_label_per_feature():
    with pytest.raises(ValueError, match="one label per feature"):
        alignment(_unit_batch(0, n=3), torch.tensor([0, 1]))


def test_losses_have_finite_gradients_even_with_duplicate_features():
    z = _unit_batch(0, n=4).float()
    z = torch.cat([z, z[:1]]).requires_grad_()
    labels = torch.tensor([0, 1, 0, 1, 0])

    (uniformity(z) + alignment(z, labels)).backward()

    assert torch.isfinite(z.grad).all()


def test_slerp_endpoints_are_exact():
    a, b = _unit_batch(0, n=6).float().chunk(2)

    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-6)
    assert torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)


def test_slerp_stays_on_the_unit_sphere():
    a, b = _unit_batch(1, n=20).float().chunk(2)
    t = torch.rand(10, 1, generator=torch.Generator().manual_seed(0))

    assert torch.allclose(slerp(a, b, t).norm(dim=1), torch.ones(10), atol=1e-6)


def test_slerp_of_a_point_with_itself_is_that_point_without_nan():
    a = _unit_batch(2, n=3).float().requires_grad_()

    mixed = slerp(a, a, torch.tensor([[0.0], [0.3], [1.0]]))
    mixed.sum().backward()

    assert torch.allclose(mixed, a.detach(), atol=1e-6)
    assert torch.isfinite(a.grad).all()


def test_slerp_of_nearly_equal_points_is_between_them():
    a = _unit_batch(3, n=1).float()
    b = F.normalize(a + 1e-6 * _unit_batch(4, n=1).float(), dim=1)

    mixed = slerp(a, b, 0.5)

    assert torch.isfinite(mixed).all()
    assert torch.allclose(mixed, a, atol=1e-5)


@pytest.mark.parametrize("t", [0.25, 0.5, 0.8])
def test_slerp_moves_the_fraction_t_of_the_angle_along_the_great_circle(t):
    a, b = _unit_batch(5, n=2)
    angle = torch.arccos(a @ b)

    mixed = slerp(a, b, t)

    assert torch.arccos(a @ mixed).item() == pytest.approx(t * angle.item(), rel=1e-9)
    assert torch.arccos(mixed @ b).item() == pytest.approx((1 - t) * angle.item(), rel=1e-9)


def test_slerp_normalises_its_inputs():
    a, b = _unit_batch(6, n=2)

    assert torch.allclose(slerp(3 * a, 0.5 * b, 0.4), slerp(a, b, 0.4))


def _two_separated_classes(per_class: int = 8, dim: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    centres = torch.zeros(2, dim)
    centres[0, 0] = centres[1, 1] = 1.0
    noise = 0.05 * torch.randn(2 * per_class, dim, generator=generator)
    features = 5 * (centres.repeat_interleave(per_class, 0) + noise)  # not normalised, like raw pooler output
    return features, torch.tensor([0, 1]).repeat_interleave(per_class)


def test_slerp_augment_keeps_shape_dtype_and_order_and_returns_unit_vectors():
    features, labels = _two_separated_classes()

    mixed = slerp_augment(features, labels, generator=torch.Generator().manual_seed(1))

    assert mixed.shape == features.shape and mixed.dtype == features.dtype
    assert torch.allclose(mixed.norm(dim=1), torch.ones(len(mixed)), atol=1e-6)
    assert not torch.allclose(mixed, F.normalize(features, dim=1))


def test_slerp_augment_mixes_only_within_a_class():
    features, labels = _two_separated_classes()
    units = F.normalize(features, dim=1)
    assert (units[labels == 0] @ units[labels == 1].T).max() < 0.3  # the classes lie about 90 degrees apart

    for seed in range(5):
        mixed = slerp_augment(features, labels, generator=torch.Generator().manual_seed(seed))
        for label in (0, 1):
            assert (mixed[labels == label] @ units[labels != label].T).max() < 0.3
            assert (mixed[labels == label] @ units[labels == label].T).min() > 0.9


def test_slerp_augment_puts_each_sample_on_the_arc_to_a_classmate():
    features, labels = _two_separated_classes(per_class=4)
    units = F.normalize(features, dim=1)

    mixed = slerp_augment(features, labels, generator=torch.Generator().manual_seed(3))

    for i in range(len(mixed)):
        classmates = (labels == labels[i]).nonzero().flatten().tolist()
        assert any(_on_arc(units[i], units[j], mixed[i]) for j in classmates)


def _on_arc(a: torch.Tensor, b: torch.Tensor, point: torch.Tensor) -> bool:
    total = torch.arccos((a @ b).clamp(-1, 1))
    parts = torch.arccos((a @ point).clamp(-1, 1)) + torch.arccos((point @ b).clamp(-1, 1))
    return bool((parts - total).abs() < 1e-3)


def test_slerp_augment_with_t_range_zero_only_normalises():
    features, labels = _two_separated_classes()

    mixed = slerp_augment(features, labels, t_range=(0.0, 0.0))

    assert torch.allclose(mixed, F.normalize(features, dim=1), atol=1e-6)


def test_slerp_augment_is_reproducible_with_a_generator_and_leaves_singletons_in_place():
    features, labels = _two_separated_classes()
    features, labels = torch.cat([features, torch.ones(1, 16)]), torch.cat([labels, torch.tensor([2])])

    first = slerp_augment(features, labels, generator=torch.Generator().manual_seed(7))
    second = slerp_augment(features, labels, generator=torch.Generator().manual_seed(7))

    assert torch.equal(first, second)
    assert torch.allclose(first[-1], F.normalize(torch.ones(16), dim=0))


def test_slerp_augment_passes_gradients_to_the_features():
    features, labels = _two_separated_classes()
    features.requires_grad_()

    slerp_augment(features, labels, generator=torch.Generator().manual_seed(0))[:, 0].sum().backward()

    assert torch.isfinite(features.grad).all() and features.grad.abs().sum() > 0


def test_mask_bce_is_the_pixel_bce_of_the_images_that_have_a_mask_and_zero_without_any():
    logits = torch.randn(3, 1, 8, 8, requires_grad=True)
    target = torch.rand(3, 1, 8, 8)
    has_mask = torch.tensor([True, False, True])

    loss = mask_bce(logits, target, has_mask)
    none = mask_bce(logits, target, torch.zeros(3, dtype=torch.bool))
    none.backward()

    expected = F.binary_cross_entropy_with_logits(logits[[0, 2]], target[[0, 2]])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert none.item() == 0.0 and logits.grad.abs().max() == 0.0
    small = mask_bce(torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 8, 8), torch.ones(1, dtype=torch.bool))
    assert small.item() == pytest.approx(math.log(2))  # the map is resized to the mask's size
