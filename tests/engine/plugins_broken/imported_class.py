from algorithm.sma_crossover import Algorithm  # noqa: F401 - not defined here: refused
