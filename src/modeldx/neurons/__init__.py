"""Neurons as objects of study: relevance between layers, maps of a layer's neurons, the layer
DAG and bundled edges between neuron clusters."""

from modeldx.neurons.bundles import Bundle, bundle_edges, cluster_strength, layer_bundles
from modeldx.neurons.graph import LayerEdge, LayerGraph, layer_graph
from modeldx.neurons.maps import neuron_map
from modeldx.neurons.relevance import relevance_matrix, top_down, weighted_layers

__all__ = [
    "Bundle", "LayerEdge", "LayerGraph", "bundle_edges", "cluster_strength", "layer_bundles",
    "layer_graph", "neuron_map", "relevance_matrix", "top_down", "weighted_layers",
]
