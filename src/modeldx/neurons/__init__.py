"""Neurons as objects of study: relevance between layers, maps of a layer's neurons, clusters."""

from modeldx.neurons.clusters import DEAD, NeuronClusters, cluster_neurons
from modeldx.neurons.features import cluster_top_items
from modeldx.neurons.maps import neuron_map
from modeldx.neurons.matrix import ActivationMatrix, activation_matrix, leaf_order
from modeldx.neurons.relevance import relevance_matrix, top_down, weighted_layers

__all__ = ["neuron_map", "relevance_matrix", "top_down", "weighted_layers",
           "DEAD", "NeuronClusters", "cluster_neurons", "ActivationMatrix", "activation_matrix", "leaf_order",
           "cluster_top_items"]
