"""Neurons as objects of study: relevance between layers, maps of a layer's neurons, clusters, the layer
DAG and bundled edges between neuron clusters."""

from modeldx.neurons.bundles import Bundle, bundle_edges, cluster_strength, layer_bundles
from modeldx.neurons.clusters import DEAD, NeuronClusters, cluster_neurons
from modeldx.neurons.features import cluster_top_items
from modeldx.neurons.graph import LayerEdge, LayerGraph, layer_graph
from modeldx.neurons.maps import neuron_map
from modeldx.neurons.matrix import ActivationMatrix, activation_matrix, leaf_order
from modeldx.neurons.relevance import relevance_matrix, top_down, weighted_layers

__all__ = ["neuron_map", "relevance_matrix", "top_down", "weighted_layers",
           "DEAD", "NeuronClusters", "cluster_neurons", "ActivationMatrix", "activation_matrix", "leaf_order",
           "cluster_top_items",
           "Bundle", "LayerEdge", "LayerGraph", "bundle_edges", "cluster_strength", "layer_bundles",
           "layer_graph"]
