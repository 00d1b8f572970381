"""The ``meta-train`` command: train (or resume) a NAP transformer from a YAML config.

``mcbo.cli`` adds it with :func:`add_commands`; run it through the ``mcbo`` command (``python -m
mcbo.meta.cli`` is the same as ``mcbo``)::

    mcbo meta-train configs/meta/hpo_krr_cpu.yaml

Exit status: 0 when training finished, 2 when the config (or a saved state) is unusable, 130 when
interrupted. Ctrl-C finishes the training step in progress, saves the state at that step and prints
one line: what is saved and the command that resumes (the same command, without ``--restart``).
A rerun says that it resumes, and from which step.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any


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

    trainer, state_path = None, None
    try:
        config = load_config(args.config)
        if args.out_dir:
            config.out_dir = args.out_dir
        state_path = Path(config.out_dir) / STATE_FILE
        if args.torch_threads is not None:
            if args.torch_threads < 1:
                raise ValueError(f"--torch-threads: got {args.torch_threads}; expected an integer >= 1")
            config.torch_threads = args.torch_threads
        if args.restart and state_path.is_file():
            shutil.move(state_path, state_path.with_name(STATE_FILE + ".discarded"))
        trainer = Trainer(config, progress=not args.no_progress)
        if trainer.load_state():
            what = ("holds a finished run: nothing left to train (--restart starts over)"
                    if trainer.phase == "done" else f"resuming at {trainer.position()}")
            print(f"{trainer.state_path} {what}", flush=True)
        path = trainer.run(resume=False)  # the saved state, if any, is loaded above
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(_interrupted(trainer, state_path, args), file=sys.stderr, flush=True)
        return 130
    print(f"likelihood-only model (TNP-EI surrogate): {trainer.likelihood_checkpoint_path}")
    print(f"NAP model: {path}")
    print(f"training metrics: {trainer.out_dir / 'metrics.csv'} ({trainer.seconds:.0f} s of training)")
    return 0


def resume_command(args: argparse.Namespace) -> str:
    """The command that continues the run of ``args`` (``--restart`` left out: it would discard the state)."""
    argv = ["mcbo", "meta-train", args.config]
    if args.out_dir:
        argv += ["--out-dir", args.out_dir]
    if args.torch_threads is not None:
        argv += ["--torch-threads", str(args.torch_threads)]
    if args.no_progress:
        argv.append("--no-progress")
    return shlex.join(argv)


def _interrupted(trainer: Any, state_path: Path | None, args: argparse.Namespace) -> str:
    """The one line printed on Ctrl-C: where training stopped, what is saved, the command that resumes."""
    command = resume_command(args)
    if trainer is None or trainer.saved_at is None:
        if state_path is not None and state_path.is_file():
            return f"interrupted before training resumed: the training state in {state_path} is unchanged; " \
                   f"resume with: {command}"
        where = "before training started" if trainer is None else f"at {trainer.position()}"
        return (f"interrupted {where}: no training state saved yet (task tables computed so far stay cached); "
                f"start again with: {command}")
    saved = trainer.position(*trainer.saved_at)
    where = "" if trainer.saved_at == (trainer.phase, trainer.step) else f"interrupted at {trainer.position()}; "
    return f"{where or 'interrupted: '}training state at {saved} saved in {trainer.state_path}; resume with: {command}"


if __name__ == "__main__":  # the same as `mcbo ...`
    from mcbo.cli import main

    sys.exit(main())
