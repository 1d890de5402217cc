"""People in a video: the faces of its sampled frames linked into the persons they show.

Between consecutive sampled frames a face is linked to the person whose box, moved on by its last motion, it
overlaps most. Appearance decides where boxes cannot: dlib's 128-d face descriptor (``face-recognition-models``),
whose distance under 0.6 is dlib's rule for one person. It costs about 75 ms a face on a CPU core (more than half of
a ViT-B/16 crop), so it is computed only where it is needed: for a face that no box continues (a person who comes
in or back), for faces whose boxes overlap more than one person's (two who cross), and for a person's last face when
they are lost (so that their return is compared with how they looked last). A person keeps one id, in order of
first appearance, through the whole video.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from .detection import Face, box_iou, dlib_box, face_models_folder

SAME_BOX = 0.3
"""The overlap (IoU) of a face with a person's predicted box from which it may be that person."""
SAME_PERSON = 0.6
"""The descriptor distance under which two faces are one person (dlib's own rule)."""

Describe = Callable[[np.ndarray, Face], np.ndarray]
"""A face's descriptor from the frame (RGB uint8) it was found in."""


class FaceDescriber:
    """dlib's face descriptor: five landmarks by dlib's predictor in the box dlib would draw, then its ResNet.
    Loaded on the first face; one model shared by the threads that prepare inputs, one face at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models = None

    def __call__(self, image: np.ndarray, face: Face) -> np.ndarray:
        import dlib

        with self._lock:
            if self._models is None:
                folder = face_models_folder()
                recognition = folder / "dlib_face_recognition_resnet_model_v1.dat"
                self._models = (dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat")),
                                dlib.face_recognition_model_v1(str(recognition)))
            shapes, recognition = self._models
            box = dlib.rectangle(*(int(round(float(v))) for v in dlib_box(face.landmarks)))
            image = np.ascontiguousarray(image)
            return np.asarray(recognition.compute_face_descriptor(image, shapes(image, box)), np.float32)


@cache
def face_describer() -> FaceDescriber:
    return FaceDescriber()


@dataclass
class _Person:
    id: int
    face: Face
    """Their last face."""
    seen: int
    """The sampled frame (counted by the linker) of their last face."""
    motion: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    descriptors: list[np.ndarray] = field(default_factory=list)
    last_described: bool = False
    """Whether their last face is among ``descriptors``."""

    @property
    def predicted(self) -> np.ndarray:
        """Where their box should be in the next sampled frame."""
        return self.face.box + self.motion

    @property
    def appearance(self) -> np.ndarray | None:
        return np.mean(self.descriptors, axis=0) if self.descriptors else None

    def seen_again(self, face: Face, frame: int) -> None:
        self.motion = face.box - self.face.box if frame == self.seen + 1 else np.zeros(4, np.float32)
        self.face, self.seen, self.last_described = face, frame, False


class PeopleLinker:
    """Gives each face of one video's sampled frames, taken in order, its person's id (a new linker per video).
    ``described`` counts the descriptors computed."""

    def __init__(self, describe: Describe | None = None):
        self.describe = describe or face_describer()
        self.people: list[_Person] = []
        self.frame = -1
        self.previous: np.ndarray | None = None
        self.described = 0

    def link(self, image: np.ndarray, faces: list[Face]) -> list[int]:
        """The person of each of ``faces``, found in ``image``, the video's next sampled frame."""
        self.frame += 1
        descriptors: dict[int, np.ndarray] = {}

        def described(index: int) -> np.ndarray:
            if index not in descriptors:
                descriptors[index] = self._describe(image, faces[index])
            return descriptors[index]

        active = [person for person in self.people if person.seen == self.frame - 1]
        chosen = self._by_boxes(active, faces, described)
        lost = [person for person in self.people if person not in chosen.values()]
        for person in lost:
            if person.seen == self.frame - 1:
                self._describe_last(person)
        unmatched = [index for index in range(len(faces)) if index not in chosen]
        chosen.update(self._by_appearance(unmatched, lost, described))
        for index in range(len(faces)):
            if index in chosen:
                chosen[index].seen_again(faces[index], self.frame)
            else:
                described(index)
                chosen[index] = _Person(len(self.people), faces[index], self.frame)
                self.people.append(chosen[index])
            if index in descriptors:
                chosen[index].descriptors.append(descriptors[index])
                chosen[index].last_described = True
        self.previous = image
        return [chosen[index].id for index in range(len(faces))]

    def _by_boxes(self, active: list[_Person], faces: list[Face],
                  described: Callable[[int], np.ndarray]) -> dict[int, _Person]:
        """Faces continuing the people of the last sampled frame: by overlap with where each should be, or, where a
        face overlaps several people (or a person several faces), by appearance among those."""
        pairs = [(person, index, overlap) for person in active for index, face in enumerate(faces)
                 if (overlap := box_iou(person.predicted, face.box)) >= SAME_BOX]
        people_of = {index: sum(1 for _, other, _ in pairs if other == index) for index in range(len(faces))}
        faces_of = {id(person): sum(1 for other, _, _ in pairs if other is person) for person in active}
        costs = []
        for person, index, overlap in pairs:
            if (people_of[index] > 1 or faces_of[id(person)] > 1) and person.appearance is not None:
                costs.append((float(np.linalg.norm(described(index) - person.appearance)), person, index))
            else:
                costs.append((1.0 - overlap, person, index))
        return _greedy(costs)

    def _by_appearance(self, unmatched: list[int], lost: list[_Person],
                       described: Callable[[int], np.ndarray]) -> dict[int, _Person]:
        """Faces no box continues, given to the people not seen in this frame that they look like."""
        known = [person for person in lost if person.appearance is not None]
        costs = [(distance, person, index) for index in unmatched for person in known
                 if (distance := float(np.linalg.norm(described(index) - person.appearance))) < SAME_PERSON]
        return _greedy(costs)

    def _describe_last(self, person: _Person) -> None:
        """A lost person's last face, described from the frame they were last seen in (once)."""
        if not person.last_described and self.previous is not None:
            person.descriptors.append(self._describe(self.previous, person.face))
            person.last_described = True

    def _describe(self, image: np.ndarray, face: Face) -> np.ndarray:
        self.described += 1
        return self.describe(image, face)


def _greedy(costs: list[tuple[float, _Person, int]]) -> dict[int, _Person]:
    """Pairs of least cost first, each person and each face in one pair at most."""
    chosen: dict[int, _Person] = {}
    for _, person, index in sorted(costs, key=lambda cost: (cost[0], cost[1].id, cost[2])):
        if index not in chosen and all(other is not person for other in chosen.values()):
            chosen[index] = person
    return chosen
