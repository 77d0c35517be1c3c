"""Training data and the benchmark degradation: HR crops with their LR made on the fly, and the LR
images evaluation and validation score models on."""
