#!/usr/bin/env python3
"""TRL's RewardTrainer on a pre-tokenized file, timed per step (for scripts/bench-rm.sh).

    python scripts/bench_trl.py MODEL DATA.parquet|DATA.jsonl BATCH MAX_LENGTH STEPS [--gradient-checkpointing]

float32 on CPU (bf16 off), dropout off (TRL's default), no saving, no evaluation;
AdamW lr 1e-5. Prints one JSON line: tokens/s over the steps after the first two (real
tokens: the attention mask's sum), seconds per step, and the trainer's final loss.
"""

import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("WANDB_DISABLED", "true")

import pyarrow.parquet as pq
import torch
from datasets import Dataset
from transformers import TrainerCallback
from transformers.utils import logging as hf_logging
from trl import RewardConfig, RewardTrainer

hf_logging.set_verbosity_error()


class Timer(TrainerCallback):
    def __init__(self):
        self.times = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self.t0)


def main():
    model, data, batch, max_length, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    gc = "--gradient-checkpointing" in sys.argv
    if data.endswith(".jsonl"):
        rows = [json.loads(line) for line in open(data) if line.strip()]
    else:
        rows = pq.read_table(data).to_pylist()
    dataset = Dataset.from_list(rows)
    tokens_per_step = sum(len(r["chosen_ids"]) + len(r["rejected_ids"]) for r in rows[:batch])
    with tempfile.TemporaryDirectory() as out:
        args = RewardConfig(
            output_dir=out,
            per_device_train_batch_size=batch,
            max_length=max_length,
            max_steps=steps,
            learning_rate=1e-5,
            lr_scheduler_type="linear",
            gradient_checkpointing=gc,
            bf16=False,
            fp16=False,
            use_cpu=True,
            logging_steps=1,
            save_strategy="no",
            eval_strategy="no",
            report_to=[],
            dataloader_num_workers=0,
            seed=42,
            disable_tqdm=True,
        )
        timer = Timer()
        trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, callbacks=[timer])
        result = trainer.train()
    timed = timer.times[2:] if len(timer.times) > 2 else timer.times
    print(
        json.dumps(
            {
                "tool": "trl",
                "trl_steps": len(timer.times),
                "tokens_per_step": tokens_per_step,
                "tokens_per_s": tokens_per_step * len(timed) / sum(timed),
                "seconds_per_step": sum(timed) / len(timed),
                "train_loss": result.training_loss,
                "threads": torch.get_num_threads(),
                "gradient_checkpointing": gc,
            }
        )
    )


if __name__ == "__main__":
    main()
