"""The LDAM quality measures on inputs whose answer is known."""

import numpy as np
import pytest
import torch
from torch import nn

from modeldx.errors import InvalidParameterError
from modeldx.ldam.quality import diversity, present, recognisability, reference_diversity


class Brightest(nn.Module):
    """A judge that names the quarter (0..3) of the image holding the most ink."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        h = x.shape[-1] // 2
        quarters = torch.stack([x[..., :h, :h].sum((1, 2, 3)), x[..., :h, h:].sum((1, 2, 3)),
                                x[..., h:, :h].sum((1, 2, 3)), x[..., h:, h:].sum((1, 2, 3))], 1)
        return quarters + self.dummy


def quarter_images(chains: int, scale: float = 1.0) -> np.ndarray:
    """(chains, 4, 1, 8, 8): neuron k's images are bright in quarter k, on a slightly negative ground."""
    grid = np.full((chains, 4, 1, 8, 8), -0.2)
    for k, (r, c) in enumerate([(0, 0), (0, 4), (4, 0), (4, 4)]):
        grid[:, k, 0, r:r + 4, c:c + 4] = 1.0
    return grid * scale


def test_recognisability_counts_the_judges_votes_per_neuron():
    grid = quarter_images(4)
    grid[0, 1] = quarter_images(1)[0, 3]  # one chain of neuron 1 looks like neuron 3
    result = recognisability(grid, Brightest(), [0, 1, 2, 3])
    assert result.score == pytest.approx(15 / 16)
    np.testing.assert_allclose(result.per_neuron, [1, 0.75, 1, 1])
    assert result.predicted[0, 1] == 3


def test_recognisability_is_blind_to_scale_and_negative_pixels():
    # scaling all pixels up cannot buy a higher score, and a strongly negative
    # region (which the ink presentation clips away) never counts as ink
    small = recognisability(quarter_images(2, 0.01), Brightest(), range(4)).score
    large = recognisability(quarter_images(2, 100.0), Brightest(), range(4)).score
    assert small == large == 1.0
    grid = quarter_images(2)
    grid[:, 0, 0, 4:, 4:] = -50.0  # neuron 0: a huge negative region in quarter 3
    assert recognisability(grid, Brightest(), range(4)).score == 1.0


def test_present_ink_is_the_positive_part_in_the_data_range():
    x = np.array([[[[-3.0, 0.0], [1.0, 2.0]]]])
    np.testing.assert_allclose(present(x)[0, 0], [[0, 0], [0.5, 1]])
    np.testing.assert_allclose(present(x, mean=0.5, std=0.5)[0, 0], [[-1, -1], [0, 1]])
    shown = present(x, presentation="display")[0, 0]  # grey is 0: -3 -> black, 0 -> mid-grey
    assert shown[0, 0] == 0 and shown[0, 1] == pytest.approx(128 / 255)


def test_diversity_is_zero_for_identical_chains_and_about_one_for_unrelated_images():
    rng = np.random.default_rng(0)
    neurons = rng.normal(size=(1, 5, 1, 12, 12))
    collapsed = np.repeat(neurons, 6, axis=0) * rng.uniform(0.5, 2, size=(6, 5, 1, 1, 1))  # scale is ignored
    assert diversity(collapsed) == pytest.approx(0, abs=1e-6)
    unrelated = rng.normal(size=(6, 5, 1, 12, 12))
    assert diversity(unrelated, smooth=0) == pytest.approx(1, abs=0.02)
    # between the two: every chain is its neuron's image plus a little of its own
    mixed = collapsed + 0.3 * rng.normal(size=collapsed.shape)
    assert 0.05 < diversity(mixed, smooth=0) < 0.9


def test_diversity_blur_discounts_pixel_noise():
    rng = np.random.default_rng(1)
    shapes = rng.normal(size=(1, 4, 1, 16, 16))
    from scipy.ndimage import gaussian_filter

    shapes = gaussian_filter(shapes, (0, 0, 0, 2, 2))
    noisy = np.repeat(shapes, 5, axis=0) + 0.05 * rng.normal(size=(5, 4, 1, 16, 16))
    assert diversity(noisy, smooth=1.0) < diversity(noisy, smooth=0)


def test_reference_diversity_of_separated_classes_is_low():
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(3, 1, 6, 6)) * 5
    labels = np.repeat(np.arange(3), 20)
    images = centres[labels] + rng.normal(size=(60, 1, 6, 6))
    assert reference_diversity(images, labels, per_class=8, smooth=0) < 0.5


@pytest.mark.parametrize("call, message", [
    (lambda: diversity(np.zeros((4, 3, 8, 8))), "(chains, neurons, C, H, W)"),
    (lambda: diversity(np.zeros((1, 3, 1, 8, 8))), "at least 2 chains"),
    (lambda: diversity(np.full((2, 2, 1, 4, 4), np.nan)), "NaN"),
    (lambda: diversity(np.zeros((2, 2, 1, 4, 4)), smooth=-1), "smooth"),
    (lambda: recognisability(quarter_images(2), Brightest(), [0, 1]), "one class per neuron"),
    (lambda: recognisability(quarter_images(2), Brightest(), range(4), std=0), "std"),
    (lambda: recognisability(quarter_images(2), Brightest(), range(4), presentation="raw"), "presentation"),
    (lambda: reference_diversity(np.zeros((4, 1, 2, 2)), np.array([0, 0, 1, 1]), per_class=3), "class 0"),
    (lambda: reference_diversity(np.zeros((4, 1, 2, 2)), np.array([0, 1]), per_class=1), "length"),
])
def test_quality_errors_name_the_bad_value(call, message):
    with pytest.raises(InvalidParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()
