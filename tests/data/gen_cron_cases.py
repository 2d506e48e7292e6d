#!/usr/bin/env python3
"""gen_cron_cases.py - expected cron fire times for tests/test_cron.c.

Writes tests/data/cron_cases.tsv (or the path given as argv[1]):

    python3 tests/data/gen_cron_cases.py tests/data/cron_cases.tsv

Each row is  expr <TAB> zone <TAB> after_ms <TAB> expected_ms <TAB> note:
the first fire time strictly after after_ms (UTC epoch milliseconds) of the
cron expression in the zone ("NULL" = pass a NULL zone, i.e. UTC).

The expected values are computed independently of engine/cron.c: this file
has its own small cron parser and finds the next fire time by brute force,
stepping instant by instant (every UTC minute, or every second for 6-field
expressions) and asking Python's zoneinfo (the system tz database) for the
wall time of each instant. The only shortcuts skip instants that cannot
fire: the rest of a local day whose date does not match (stopping 3 hours
short of local midnight, more than any DST jump of the zones used), and for
6-field expressions the rest of a non-matching minute.

The rule applied at each instant t, with wall time w = local(t):
  * wall-clock jobs (a '*' or '/' in the seconds, minute or hour field):
    fire when w matches;
  * fixed-time jobs (no '*' or '/' in those fields): fire when w matches
    and t is the first occurrence of w (zoneinfo fold == 0), and also when
    t ends a spring-forward gap (local(t - step) + step < w) and some wall
    time skipped by that gap matches.
Day rule (Vixie): if day-of-month or day-of-week starts with '*', both must
match, otherwise either.
"""

import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN",
          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# (lo, hi, names) per field, seconds first
FIELDS = [(0, 59, None), (0, 59, None), (0, 23, None), (1, 31, None),
          (1, 12, MONTHS), (0, 7, DAYS)]


class Cron:
    def __init__(self, text):
        text = text.strip()
        if text.startswith("@"):
            text = MACROS[text.lower()]
        parts = text.split()
        assert len(parts) in (5, 6), text
        self.seconds = len(parts) == 6
        if not self.seconds:
            parts = ["0"] + parts
        sets = [self._field(p, *FIELDS[i]) for i, p in enumerate(parts)]
        self.sec, self.min, self.hour, self.dom, self.mon, dow = sets
        self.dow = {d % 7 for d in dow}
        self.and_days = parts[3].startswith("*") or parts[5].startswith("*")
        self.fixed = not any(("*" in p or "/" in p) for p in parts[:3])

    @staticmethod
    def _value(tok, names, lo, is_end):
        if tok.isdigit():
            v = int(tok)
        else:
            v = names.index(tok.upper()) + lo
            if is_end and names is DAYS and v == 0:
                v = 7
        return v

    def _field(self, text, lo, hi, names):
        out = set()
        for item in text.split(","):
            step, has_step = 1, "/" in item
            if has_step:
                item, s = item.split("/")
                step = int(s)
            if item == "*":
                a, b = lo, hi
            elif "-" in item:
                x, y = item.split("-")
                a = self._value(x, names, lo, False)
                b = self._value(y, names, lo, True)
            else:
                a = self._value(item, names, lo, False)
                b = hi if has_step else a  # "a/n" means a-max/n
            assert lo <= a <= b <= hi, text
            out.update(range(a, b + 1, step))
        return out

    def day_ok(self, w):
        dom = w.day in self.dom
        dow = (w.weekday() + 1) % 7 in self.dow
        both = dom and dow if self.and_days else dom or dow
        return w.month in self.mon and both

    def minute_ok(self, w):
        return self.day_ok(w) and w.hour in self.hour and w.minute in self.min

    def match(self, w):
        return self.minute_ok(w) and w.second in self.sec


def wall(t, zone):
    dt = datetime.fromtimestamp(t, zone)
    assert dt.utcoffset().total_seconds() % 60 == 0
    return dt


def naive(dt):
    return dt.replace(tzinfo=None)


def next_fire(cron, zone_name, after_ms):
    """First fire instant (ms) strictly after after_ms, by brute force."""
    zone = timezone.utc if zone_name in ("UTC", "NULL") else ZoneInfo(zone_name)
    step = 1 if cron.seconds else 60
    t = (after_ms // (step * 1000) + 1) * step
    limit = t + 41 * 366 * 86400
    while t < limit:
        dt = wall(t, zone)
        w = naive(dt)
        if cron.match(w) and (not cron.fixed or dt.fold == 0):
            return t * 1000
        if cron.fixed:
            prev = naive(wall(t - step, zone)) + timedelta(seconds=step)
            if prev < w:  # t ends a spring-forward gap
                assert prev.date() == w.date(), "gap across midnight"
                x = prev
                while x < w:
                    if cron.match(x):
                        return t * 1000
                    x += timedelta(seconds=step)
        if not cron.day_ok(w):
            left = 86400 - (w.hour * 3600 + w.minute * 60 + w.second)
            if zone is not timezone.utc:
                left -= 3 * 3600
            t += max(60 - t % 60, left // 60 * 60)
        elif cron.seconds and not cron.minute_ok(w):
            t += 60 - t % 60
        else:
            t += step
    raise RuntimeError("no fire time within 41 years")


def ms(iso, zone="UTC"):
    """Epoch ms of a local ISO time (fold 0) in zone."""
    dt = datetime.fromisoformat(iso)
    z = timezone.utc if zone in ("UTC", "NULL") else ZoneInfo(zone)
    return round(dt.replace(tzinfo=z).timestamp() * 1000)


def transitions(zone_name, year):
    """Instants (s) in year where the zone's UTC offset changes."""
    z = ZoneInfo(zone_name)
    out = []
    t = int(datetime(year, 1, 1, tzinfo=timezone.utc).timestamp())
    end = int(datetime(year + 1, 1, 1, tzinfo=timezone.utc).timestamp())
    off = z.utcoffset(datetime.fromtimestamp(t, z))
    while t < end:
        n = t + 3600
        noff = z.utcoffset(datetime.fromtimestamp(n, z))
        if noff != off:
            lo, hi = t, n  # offset(lo) = off, offset(hi) = noff
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if z.utcoffset(datetime.fromtimestamp(mid, z)) == off:
                    lo = mid
                else:
                    hi = mid
            out.append(hi)
            off = noff
        t = n
    return out


ROWS = []


def note(t_ms, zone_name):
    z = timezone.utc if zone_name in ("UTC", "NULL") else ZoneInfo(zone_name)
    dt = datetime.fromtimestamp(t_ms / 1000, z)
    return dt.isoformat()


def chain(expr, zone, after_ms, n):
    cron = Cron(expr)
    for _ in range(n):
        nxt = next_fire(cron, zone, after_ms)
        ROWS.append((expr, zone, after_ms, nxt, note(nxt, zone)))
        after_ms = nxt


SYNTAX = [
    "* * * * *", "*/5 * * * *", "0 9 * * MON-FRI", "15 14 1 * *",
    "0 22 * * 1-5", "23 0-20/2 * * *", "5 4 * * sun", "0 0,12 1 */2 *",
    "10-50/10 * * * *", "5/15 * * * *", "0 0 1 1 *", "@yearly",
    "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly",
    "@DAILY", "0 12 * JAN,jul *", "0 0 * * 7", "0 0 * * 0",
    "0 0 13 * FRI", "0 0 1,15 * MON", "0 0 */2 * MON", "0 0 1 * */2",
    "0 0 31 * *", "0 0 30 * *", "59 23 31 12 *", "0 8 * * MON-SUN",
    "0 0 * * 5/1", "0 6 * * SAT,SUN", "1-3,58 * * * *", "0 0 * 2 *",
    "0 0 1-7 * MON", "0 0 1-7 * *", "0 12 * * */3", "7 7 7 7 *",
    "0 0 29 2 MON", "0 0 31 jan-dec/2 *", "0 0 * feb-apr wed",
    "30 * * * * *", "*/10 * * * * *", "0 0 12 * * *",
    "15,45 30 9 * * MON", "0 0 0 29 2 *", "59 59 23 31 12 *",
    "5/20 * * * * *", "0 0 0 1 1 *",
]
UTC_STARTS = [
    "2024-01-01T00:00:00", "2023-12-31T23:59:59.999", "2024-02-28T12:00:00",
    "2025-02-28T23:59:00", "2000-02-28T06:30:00", "1969-12-31T22:59:30",
    "2038-01-19T03:14:07",
]


def main():
    # 1. every syntax form, UTC (some through the NULL zone)
    for i, expr in enumerate(SYNTAX):
        for j, start in enumerate(UTC_STARTS[:3] if i % 2 else UTC_STARTS[3:]):
            zone = "NULL" if (i + j) % 3 == 0 else "UTC"
            chain(expr, zone, ms(start), 2)
    # 2. leap years, month ends, long waits
    for expr, start, n in [
        ("0 0 29 2 *", "2096-03-01T00:00:00", 2),
        ("0 0 29 2 *", "1999-03-01T00:00:00", 2),
        ("0 12 29 2 */7", "2020-01-01T00:00:00", 2),
        ("0 0 31 * *", "2024-01-31T00:00:00", 8),
        ("0 0 30 * *", "2023-01-30T00:00:00", 4),
        ("59 23 28-31 2 *", "2023-02-27T00:00:00", 4),
        ("0 0 1 * *", "2024-12-15T00:00:00", 3),
        ("0 0 29 2 * ", "2024-02-29T00:00:00", 1),
        ("0 0 0 29 2 *", "2028-02-28T23:59:59.500", 1),
    ]:
        chain(expr, "UTC", ms(start), n)
    # 3. time zones: around both transitions of 2024 and 2025, and 1969
    zexprs = [
        "30 2 * * *", "30 1 * * *", "0 2 * * *", "0 3 * * *",
        "0,30 2 * * *", "*/15 * * * *", "0 * * * *", "0 */2 * * *",
        "0 1-3 * * *", "*/30 1-3 * * *", "45 1 * * SUN", "0 0 * * *",
        "0 30 2 * * *", "*/20 30 2 * * *", "0 9 * * MON-FRI", "59 1 * * *",
    ]
    for zone in ["America/New_York", "Europe/Berlin", "Australia/Sydney"]:
        for year in (2024, 2025):
            for tr in transitions(zone, year):
                for expr in zexprs:
                    chain(expr, zone, (tr - 3 * 3600) * 1000, 3)
                    chain(expr, zone, (tr - 1) * 1000 + 123, 2)
                    chain(expr, zone, tr * 1000 - 1, 1)
                chain("*/15 * * * *", zone, (tr - 3600) * 1000, 10)
                chain("30 1 * * *", zone, tr * 1000 + 1800 * 1000, 2)
        tr = transitions(zone, 1969)
        for t in tr:
            chain("30 2 * * *", zone, (t - 86400) * 1000, 3)
        chain("0 0 1 * *", zone, ms("2024-01-15T00:00:00"), 12)
        chain("@weekly", zone, ms("2024-03-01T00:00:00"), 6)
        chain("0 0 29 2 *", zone, ms("2025-01-01T00:00:00"), 1)
    for expr in ["0 0 * * *", "30 5 * * *", "*/45 * * * *", "0 0 1 * *",
                 "0 9 * * MON-FRI", "0 0 0 29 2 *", "@hourly"]:
        chain(expr, "Asia/Kolkata", ms("2024-02-28T20:00:00"), 3)
        chain(expr, "Asia/Kolkata", ms("1970-01-01T00:00:00"), 1)

    out = open(sys.argv[1], "w") if len(sys.argv) > 1 else sys.stdout
    out.write("# Generated by tests/data/gen_cron_cases.py - do not edit.\n")
    out.write("# expr\tzone\tafter_ms\texpected_ms\texpected local time\n")
    for r in ROWS:
        out.write("%s\t%s\t%d\t%d\t%s\n" % r)


if __name__ == "__main__":
    main()
