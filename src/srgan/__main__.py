"""`python -m srgan` (and `torchrun -m srgan train ...`) runs the command line."""

from srgan.cli import main

raise SystemExit(main())
