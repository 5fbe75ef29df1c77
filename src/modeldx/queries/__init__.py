"""Diagnosis queries, each exact over a store and streamed over its item chunks.

Every query takes ``items=`` and ``weights=`` to run on a subset (a sample)
instead of every item; its answer's ``attrs["source"]`` says which.
"""

from modeldx.queries.aggregates import activation_aggregates
from modeldx.queries.boundary import boundary_inputs
from modeldx.queries.cka import linear_cka
from modeldx.queries.class_means import ClassMeans, class_means, class_means_table
from modeldx.queries.confidence import top_k_confidence
from modeldx.queries.confusion import confusion_matrix, misclassified
from modeldx.queries.dead import dead_neurons
from modeldx.queries.neighbors import nearest_neighbors
from modeldx.queries.profile import activation_profile
from modeldx.queries.registry import QUERIES, Evaluation, QueryInfo, available, get, register
from modeldx.queries.top_k_inputs import top_k_inputs
from modeldx.queries.top_k_neurons import top_k_neurons

__all__ = [
    "activation_aggregates", "boundary_inputs", "linear_cka", "confusion_matrix", "misclassified",
    "dead_neurons", "nearest_neighbors", "activation_profile", "top_k_inputs", "top_k_neurons",
    "top_k_confidence", "class_means", "class_means_table", "ClassMeans",
    "QUERIES", "Evaluation", "QueryInfo", "available", "get", "register",
]
