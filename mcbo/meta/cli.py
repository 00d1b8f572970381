"""The ``meta-train`` command: train (or resume) a NAP transformer from a YAML config.

``mcbo.cli`` adds it with :func:`add_commands`; run it through the ``mcbo`` command (``python -m
mcbo.meta.cli`` is the same as ``mcbo``)::

    mcbo meta-train configs/meta/hpo_krr_cpu.yaml

Exit status: 0 when training finished, 2 when the config (or a saved state) is unusable.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``meta-train`` to an argparse ``subparsers`` object (it sets ``func``)."""
    cmd = subparsers.add_parser(
        "meta-train", help="meta-train a NAP transformer neural process from a YAML config",
        description="Likelihood pre-training then PPO (NAP, Maraval et al. 2023) on a task family. The state is "
                    "saved as training goes; running the same command again resumes.")
    cmd.add_argument("config", help="meta-training config YAML (see configs/meta/)")
    cmd.add_argument("--out-dir", default=None, help="output folder (default: the config's out_dir)")
    cmd.add_argument("--restart", action="store_true", help="discard a saved training state and start over")
    cmd.add_argument("--torch-threads", type=int, default=None, help="torch threads (default: the config's, 1)")
    cmd.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    cmd.set_defaults(func=meta_train_command)


def meta_train_command(args: argparse.Namespace) -> int:
    """Run the training of ``args.config``; print where the checkpoints are."""
    from mcbo.meta.config import load_config
    from mcbo.meta.train import STATE_FILE, Trainer

    try:
        config = load_config(args.config)
        if args.out_dir:
            config.out_dir = args.out_dir
        if args.torch_threads is not None:
            if args.torch_threads < 1:
                raise ValueError(f"--torch-threads: got {args.torch_threads}; expected an integer >= 1")
            config.torch_threads = args.torch_threads
        if args.restart and (Path(config.out_dir) / STATE_FILE).is_file():
            shutil.move(Path(config.out_dir) / STATE_FILE, Path(config.out_dir) / (STATE_FILE + ".discarded"))
        trainer = Trainer(config, progress=not args.no_progress)
        path = trainer.run(resume=True)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"likelihood-only model (TNP-EI surrogate): {trainer.likelihood_checkpoint_path}")
    print(f"NAP model: {path}")
    print(f"training metrics: {trainer.out_dir / 'metrics.csv'} ({trainer.seconds:.0f} s of training)")
    return 0


if __name__ == "__main__":  # the same as `mcbo ...`
    from mcbo.cli import main

    sys.exit(main())
