"""Read a reference window and a current stream into one table shape, and cut the stream into windows.

Sources: a JSONL/Parquet/CSV path, a pandas DataFrame, a list of dicts, or the ledger's gateway request log
(`ledger:SINCE..UNTIL`, each an ISO date/time or a relative `-7d`, `-12h`; either side may be empty).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from truecost.errors import UserError, existing_file

if TYPE_CHECKING:
    import pandas as pd

    from truecost.ledger import Ledger

COLUMNS = ("prompt", "output", "quality", "latency_ms", "cost_usd", "model", "timestamp")
REQUIRED_COLUMNS = ("prompt",)
NUMERIC_COLUMNS = ("quality", "latency_ms", "cost_usd")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `1h`, `7d`, `2w` as a timedelta; UserError otherwise."""
    match = _DURATION.match(text)
    try:
        duration = timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)]) if match else None
    except OverflowError:  # more days than a timedelta holds
        duration = None
    # Below a microsecond a timedelta is zero: no window could be cut with it.
    if duration is None or duration <= timedelta(0):
        raise UserError(f"{text!r} is not a duration (e.g. 15m, 1h, 7d)")
    return duration


def _parse_time(text: str, now: datetime) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    if text.startswith("-"):
        return now - parse_duration(text[1:])
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UserError(f"{text!r} is not an ISO date/time or a relative time like -7d") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_ledger_source(spec: str, now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
    """`ledger:SINCE..UNTIL` -> (since, until); `ledger:` alone is the whole log."""
    body = spec.split(":", 1)[1] if ":" in spec else ""
    since_text, _, until_text = body.partition("..")
    now = now or datetime.now(UTC)
    return _parse_time(since_text, now), _parse_time(until_text, now)


def requests_frame(requests: Sequence[Any]) -> pd.DataFrame:
    """Ledger `RequestRecord`s as a canonical table."""
    import pandas as pd

    rows = [{"prompt": r.prompt, "output": r.output, "quality": r.quality, "latency_ms": r.latency_ms,
             "cost_usd": r.cost_usd, "model": r.model, "timestamp": r.timestamp} for r in requests]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _read_path(path: Path) -> pd.DataFrame:
    import pandas as pd

    existing_file(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            # utf-8-sig: files saved by Windows tools start with a byte-order mark; plain UTF-8 reads the same.
            return pd.read_json(path, lines=True, encoding="utf-8-sig")
        if suffix == ".json":
            return pd.read_json(path, encoding="utf-8-sig")
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read it as {suffix[1:]} ({str(exc).splitlines()[0]})") from exc
    raise UserError(f"{path}: unknown format {suffix!r}; use .jsonl, .parquet or .csv")


def load_records(source: Any, columns: Mapping[str, str] | None = None, *, ledger: Ledger | None = None,
                 dropped: dict[str, int] | None = None) -> pd.DataFrame:
    """Any supported source as a DataFrame with the canonical columns (optional ones missing are empty).

    `columns` maps canonical names to the source's names, e.g. {"quality": "correct", "prompt": "question"}.
    A `ledger:` source is read from `ledger`, which must be given. Non-finite numbers are dropped (left empty)
    and counted into `dropped` by column.
    """
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        frame, name = source.copy(), "the DataFrame"
    elif isinstance(source, str) and source.startswith("ledger:"):
        if ledger is None:
            raise UserError(f"{source}: reading the request log needs a ledger (pass ledger=...)")
        since, until = parse_ledger_source(source)
        frame, name = requests_frame(ledger.list_requests(since=since, until=until)), source
        if frame["prompt"].isna().all() and len(frame):
            raise UserError(f"{source}: the gateway logged no prompts (set log_prompts: true in gateway.yaml)")
    elif isinstance(source, str | Path):
        frame, name = _read_path(Path(source)), str(source)
    elif isinstance(source, Sequence):
        frame, name = pd.DataFrame([dict(row) for row in source]), "the records"
    else:
        raise UserError(f"cannot read records from a {type(source).__name__}")
    return canonical_frame(frame, columns or {}, source=name, dropped=dropped)


def canonical_frame(frame: pd.DataFrame, columns: Mapping[str, str], *, source: str = "the data",
                    dropped: dict[str, int] | None = None, require_prompts: bool = True) -> pd.DataFrame:
    """Rename mapped columns, check the required ones and the types, and add missing optional columns as empty.

    `require_prompts`: a non-empty table whose every prompt is missing is an error (not a stream of empty texts).
    """
    import pandas as pd

    frame = _mapped(frame, columns, source)
    for name in REQUIRED_COLUMNS:
        if name not in frame.columns and len(frame):
            raise UserError(f"{source}: no column {name!r} (it has: {_names(frame)}); map yours with "
                            f"--columns {name}=YOUR_COLUMN")
    out = pd.DataFrame(index=range(len(frame)))
    for name in COLUMNS:
        out[name] = frame[name].to_numpy() if name in frame.columns else None
    for name in NUMERIC_COLUMNS:
        out[name] = _numbers(out[name], name, source, dropped)
    quality = out["quality"].dropna()
    if len(quality) and (quality.min() < 0 or quality.max() > 1):
        raise UserError(f"{source}: column 'quality' must lie in 0..1 (a correctness flag or a score)")
    for name in ("latency_ms", "cost_usd"):
        if (out[name].dropna() < 0).any():
            raise UserError(f"{source}: column {name!r} holds negative values")
    if out["timestamp"].notna().any():
        out["timestamp"] = _timestamps(out["timestamp"], source)
    if require_prompts and len(out) and out["prompt"].isna().all():  # text tests would judge empty strings
        raise UserError(f"{source}: column 'prompt' is empty in every row")
    out["prompt"] = out["prompt"].fillna("").astype(str)
    return out


def _mapped(frame: pd.DataFrame, columns: Mapping[str, str], source: str) -> pd.DataFrame:
    """`frame` with the `--columns` mapping applied; a mapped column replaces one that already has its name."""
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown:
        raise UserError(f"--columns: unknown name(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}")
    missing = [src for src in columns.values() if src not in frame.columns]
    if missing:
        raise UserError(f"{source}: no column(s) {', '.join(missing)}, which --columns names "
                        f"(it has: {_names(frame)})")
    sources = list(columns.values())
    twice = sorted({src for src in sources if sources.count(src) > 1})
    if twice:
        raise UserError(f"--columns: {', '.join(twice)} is mapped to more than one name")
    # Two columns of one name would follow otherwise: `quality=correct` over a file that also has `quality`.
    replaced = [name for name in columns if name in frame.columns and name not in sources]
    return frame.drop(columns=replaced).rename(columns={src: name for name, src in columns.items()})


def _timestamps(values: pd.Series, source: str) -> pd.Series:
    """Date/times in UTC. Bare numbers are refused: seconds, milliseconds or nanoseconds since 1970 cannot be told
    apart, and pandas would read Unix seconds as nanoseconds, putting every row in January 1970."""
    import numbers

    import pandas as pd

    if all(isinstance(v, numbers.Number) and not isinstance(v, bool) for v in values.dropna()):
        raise UserError(f"{source}: column 'timestamp' holds numbers; write ISO 8601 times (2026-01-31T12:00:00Z)")
    try:
        return pd.to_datetime(values, utc=True)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{source}: column 'timestamp' is not a date/time ({_first_line(exc)})") from exc


def _first_line(exc: Exception) -> str:
    """pandas appends lines of advice to its parse errors; the first sentence says what is wrong."""
    text = str(exc).strip()
    return text.splitlines()[0].split(". You might")[0] if text else type(exc).__name__


def _names(frame: pd.DataFrame) -> str:
    names = [str(c) for c in frame.columns]
    return ", ".join(names[:12]) + (", ..." if len(names) > 12 else "") if names else "none"


def _numbers(column: pd.Series, name: str, source: str, dropped: dict[str, int] | None) -> pd.Series:
    """A numeric column as floats; text is an error, non-finite values (inf, -inf) are emptied and counted."""
    import numpy as np
    import pandas as pd

    values = pd.to_numeric(column, errors="coerce").astype(float)
    if column.notna().sum() != values.notna().sum():
        raise UserError(f"{source}: column {name!r} holds values that are not numbers")
    infinite = np.isinf(values.to_numpy())
    if infinite.any():
        values[infinite] = np.nan
        if dropped is not None:
            dropped[name] = dropped.get(name, 0) + int(infinite.sum())
    return values


def cut_windows(frame: pd.DataFrame, window: int | None = None, every: str | None = None) -> list[pd.DataFrame]:
    """The current stream as consecutive windows: `window` rows each, or one per `every` of timestamps.

    A trailing count window shorter than half a window is merged into the one before, so no window is too
    small to test.
    """
    if every:
        if frame["timestamp"].isna().all():
            raise UserError("--every needs a 'timestamp' column (or map one with --columns timestamp=...)")
        step = parse_duration(every)
        stamps = frame["timestamp"]
        if stamps.isna().any():
            raise UserError(f"--every: {int(stamps.isna().sum())} of {len(frame)} rows have no timestamp; give "
                            "every row one, or cut windows by count with --window")
        start = stamps.min()
        bucket = ((stamps - start) / step).astype(int)
        return [part.reset_index(drop=True) for _, part in frame.groupby(bucket, sort=True)]
    size = int(window or 50)
    if size < 1:
        raise UserError("--window must be at least 1")
    bounds = list(range(0, len(frame), size))
    parts = [frame.iloc[b:b + size] for b in bounds]
    if len(parts) > 1 and len(parts[-1]) < size / 2:
        parts[-2] = frame.iloc[bounds[-2]:]
        parts.pop()
    return [part.reset_index(drop=True) for part in parts if len(part)]
