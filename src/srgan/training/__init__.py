"""The training loop: SRResNet pre-training, adversarial training, checkpoints, distributed runs."""
