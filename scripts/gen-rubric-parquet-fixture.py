#!/usr/bin/env python3
"""A rubric stored as pandas/pyarrow store it (tests/fixtures/rubric/mixed-checks.parquet).

pyarrow writes a column of lists of dicts as a list of structs whose fields are the union of
every item's keys, null where an item lacks one: `{"rule": "...", "kwargs": null, "judge":
null, "url": null}` beside `{"rule": null, ..., "url": "http://..."}`. rmtk must read those
nulls as absent fields (tests/it/rubric.rs checks it).

Run: .venv-data/bin/python scripts/gen-rubric-parquet-fixture.py
(the venv of scripts/requirements/data.txt: pandas, pyarrow 22.0.0); deterministic.
"""
import argparse
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "rubric" / "mixed-checks.parquet"

RUBRIC = [
    {"criterion": "Uses no commas", "hard": True, "check": {"rule": "punctuation:no_comma"}},
    {"criterion": "At least 2 words",
     "check": {"rule": "length_constraints:number_words",
               "kwargs": {"relation": "at least", "num_words": 2}}},
    {"criterion": "The ending surprises the reader", "weight": 2.0},
    {"criterion": "Sensory detail", "check": {"judge": "Does it use concrete sensory detail?"}},
    {"criterion": "Reads at a 5th-grade level", "weight": 0.5,
     "check": {"url": "http://127.0.0.1:5000/grade"}},
]

if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    import pandas as pd

    OUT.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([{"prompt": "Write about rain. No commas.", "response": "Rain again",
                           "rubric": RUBRIC}])
    frame.to_parquet(OUT, index=False)
    print(f"wrote {OUT}")
