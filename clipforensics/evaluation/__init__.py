"""Scoring models over manifests, for detection and localization alike.

``load_samples`` reads the manifests; ``predict_samples`` runs a model over them, one row per sample
(``Prediction`` or ``MapPrediction``); ``Evaluation(task, rows)`` computes the metric tables;
``evaluate`` does both; ``write_evaluation`` writes ``predictions.csv``, ``metrics.json`` and the reports.
``Perturbation`` degrades each frame first (robustness studies). Nothing here imports torch until a model
is run.
"""

from .evaluations import DetectionEvaluation, Evaluation, LocalizationEvaluation, evaluate
from .perturbations import PERTURBATION_HELP, Perturbation
from .predictions import TASKS, Example, MapPrediction, Prediction, load_samples, predict_samples
from .reports import write_evaluation

__all__ = ["PERTURBATION_HELP", "TASKS", "DetectionEvaluation", "Evaluation", "Example", "LocalizationEvaluation",
           "MapPrediction", "Perturbation", "Prediction", "evaluate", "load_samples", "predict_samples",
           "write_evaluation"]
