"""Pictures of results: labels that do not cover their box, overlays that carry their colour scale."""

import numpy as np

from clipforensics.colours import FAKE
from clipforensics.inference.drawing import draw_faces, overlay
from clipforensics.inference.results import FaceResult


def test_a_face_label_sits_on_a_filled_band_above_its_box():
    image = np.full((300, 400, 3), 128, np.uint8)

    drawn = draw_faces(image, [FaceResult([100, 150, 200, 280], 0.99, 0.9)], threshold=0.5)

    inside = drawn[155:275, 105:195]
    assert (inside == 128).all()  # nothing drawn over the face
    band = drawn[100:150, 100:200]
    assert (drawn[130:149, 100:103] == FAKE).all()  # a band filled right above the box
    assert (band.min(axis=-1) > 200).any()  # light text on it


def test_a_face_at_the_top_edge_gets_its_label_inside_the_box():
    image = np.full((300, 400, 3), 128, np.uint8)

    drawn = draw_faces(image, [FaceResult([100, 2, 200, 200], 0.99, 0.9)], threshold=0.5)

    assert (drawn[5:20, 105:140] == FAKE).all(axis=-1).any()


def test_an_overlay_carries_a_jet_colour_bar_from_0_to_1():
    image = np.full((300, 400, 3), 128, np.uint8)

    picture = overlay(image, np.zeros((300, 400), np.float32))

    assert picture.shape == image.shape
    corner = picture[250:, 250:].reshape(-1, 3).astype(int)
    blue = ((corner[:, 2] > 100) & (corner[:, 0] < 60)).any()
    red = ((corner[:, 0] > 100) & (corner[:, 2] < 60)).any()
    assert blue and red  # both ends of the jet scale
    assert (picture[:200, :200] == 128).all()  # the rest of an untouched image stays as it was
