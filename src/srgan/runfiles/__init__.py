"""The files a training run leaves (checkpoints, compact resume states), readable by anything that
loads weights without knowing the trainer that wrote them."""
