"""ydata-profiling over a JSON-lines file, for bench/profile (the baseline of `pipescope profile`).

usage: ydata_profile.py RECORDS.jsonl OUT_DIR

Loads the records with pandas (nested objects flattened by json_normalize into `a.b` columns, as
pipescope names their paths), profiles them with ydata-profiling and writes OUT_DIR/main.json
(the report's to_json), one OUT_DIR/<path>.json per array field's elements (the exploded values,
pipescope's `path[]`) and OUT_DIR/timing.json (wall and CPU seconds of load and profile).

Settings: ydata-profiling's defaults (minimal=False) except correlations and interactions, which
pipescope does not compute (its report has neither), so their cost would not be like for like.
"""

import json
import math
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import pandas as pd  # noqa: E402
from ydata_profiling import ProfileReport  # noqa: E402


def profile(frame, title):
    report = ProfileReport(
        frame,
        title=title,
        minimal=False,
        correlations=None,
        interactions=None,
        progress_bar=False,
    )
    # Its JSON may hold NaN and Infinity, which are not JSON: written as null.
    return json.dumps(finite(json.loads(report.to_json())))


def finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def main():
    path, out_dir = sys.argv[1], sys.argv[2]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    frame = pd.json_normalize(records, sep=".")
    del records
    array_columns = [
        c for c in frame.columns if frame[c].map(lambda v: isinstance(v, list)).any()
    ]
    elements = {}
    for c in array_columns:
        exploded = frame[c].map(lambda v: v if isinstance(v, list) else None).explode()
        elements[c] = pd.DataFrame({c + "[]": exploded.dropna().reset_index(drop=True)})
        # ydata-profiling cannot hash lists: the array itself is profiled as its JSON text.
        frame[c] = frame[c].map(lambda v: json.dumps(v) if isinstance(v, list) else v)
    wall1, cpu1 = time.perf_counter(), time.process_time()

    with open(f"{out_dir}/main.json", "w", encoding="utf-8") as f:
        f.write(profile(frame, "records"))
    for c, element_frame in elements.items():
        with open(f"{out_dir}/{c}[].json", "w", encoding="utf-8") as f:
            f.write(profile(element_frame, c + "[]"))
    wall2, cpu2 = time.perf_counter(), time.process_time()

    timing = {
        "load_wall_s": wall1 - wall0,
        "load_cpu_s": cpu1 - cpu0,
        "profile_wall_s": wall2 - wall1,
        "profile_cpu_s": cpu2 - cpu1,
        "records": len(frame),
        "columns": list(frame.columns),
        "array_columns": array_columns,
    }
    with open(f"{out_dir}/timing.json", "w", encoding="utf-8") as f:
        json.dump(timing, f)


if __name__ == "__main__":
    main()
