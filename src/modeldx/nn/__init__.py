"""Neural-network building blocks: the power-law embedding of the thesis' chapter 5."""

from modeldx.nn.power_law import PowerLawEmbedding, PowerLawOutput, power_law_blocks

__all__ = ["PowerLawEmbedding", "PowerLawOutput", "power_law_blocks"]
