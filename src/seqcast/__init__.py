"""seqcast: forecast univariate time series with small neural networks.

Many models of one architecture train together in one compiled JAX program, and
every report shows statistical baselines beside the network.
"""

__version__ = "0.1.0"
