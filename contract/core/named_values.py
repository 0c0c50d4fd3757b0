"""Values that read like what a property is called: ``Paris`` for ``city``, ``19.99`` for ``price``.

Made-up tool-call arguments and structured content should look like something a model would write, not
like fuzzing output, so the schema builder asks here first for a property's string or number by its name
(``getWeather``, ``first_name``), or for a string of a ``format``. Every choice is drawn from the random
source the caller passes, so a seeded build replays exactly.
"""

from __future__ import annotations

import datetime as _dt
import re
import uuid
from dataclasses import dataclass
from random import Random


@dataclass(frozen=True)
class Hints:
    """What the conversation suggests for values: its words, and the proper nouns among them (``Paris``)."""

    words: tuple[str, ...] = ()
    proper_nouns: tuple[str, ...] = ()


NO_HINTS = Hints()


_CITIES = ("Paris", "Tokyo", "Lisbon", "Nairobi", "Montréal", "São Paulo", "Oslo", "Seoul")
_NAMED_STRINGS: dict[str, tuple[str, ...]] = {
    "city": _CITIES,
    "location": _CITIES,
    "place": _CITIES,
    "destination": _CITIES,
    "origin": _CITIES,
    "country": ("France", "Japan", "Portugal", "Kenya", "Canada", "Brazil"),
    "name": ("Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson"),
    "author": ("Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson"),
    "owner": ("Grace Hopper",),
    "person": ("Alan Turing",),
    "contact": ("Katherine Johnson",),
    "assignee": ("Ada Lovelace",),
    "recipient": ("Grace Hopper",),
    "first": ("Ada", "Grace", "Alan", "Katherine"),
    "last": ("Lovelace", "Hopper", "Turing", "Johnson"),
    "username": ("ada.l", "ghopper", "aturing"),
    "user": ("ada.l", "ghopper", "aturing"),
    "email": ("ada@example.com", "grace.hopper@example.org"),
    "unit": ("celsius", "metric"),
    "units": ("metric",),
    "language": ("en", "fr", "ja"),
    "lang": ("en", "fr", "ja"),
    "locale": ("en-US", "fr-FR"),
    "currency": ("EUR", "USD", "JPY"),
    "symbol": ("AAPL", "MSFT"),
    "ticker": ("AAPL", "MSFT"),
    "timezone": ("Europe/Paris", "Asia/Tokyo", "UTC"),
    "tz": ("Europe/Paris", "UTC"),
    "date": ("2026-11-26", "2026-12-03"),
    "time": ("09:30", "14:00"),
    "day": ("Monday", "Friday"),
    "url": ("https://example.com/docs", "https://example.org/report"),
    "link": ("https://example.com/docs",),
    "phone": ("+33 1 23 45 67 89", "+81 3-1234-5678"),
    "address": ("12 Rue de Rivoli, Paris", "1-1 Chiyoda, Tokyo"),
    "color": ("blue", "green", "amber"),
    "colour": ("blue", "green"),
    "status": ("active", "pending", "done"),
    "state": ("open", "closed"),
    "category": ("books", "travel", "music"),
    "type": ("standard", "express"),
    "kind": ("standard",),
    "priority": ("high", "normal", "low"),
    "sort": ("asc", "desc"),
    "order": ("asc", "desc"),
    "title": ("Quarterly report", "Trip to Lisbon", "Team sync"),
    "subject": ("Meeting notes", "Your order has shipped"),
    "id": ("item_4821", "ord_1093", "usr_7712"),
    "sku": ("SKU-10442",),
    "code": ("A12", "FR-75"),
    "model": ("standard",),
    "format": ("json", "markdown"),
    "mode": ("fast", "accurate"),
    "path": ("/reports/2026/summary.txt",),
    "file": ("summary.txt", "notes.md"),
    "filename": ("summary.txt",),
    "tag": ("urgent", "travel", "finance"),
    "label": ("urgent", "travel"),
    "keyword": ("weather", "budget"),
}
_TEXT_NAMES = {
    "query",
    "q",
    "search",
    "text",
    "message",
    "content",
    "body",
    "prompt",
    "question",
    "input",
    "description",
    "note",
    "notes",
    "comment",
    "summary",
    "topic",
    "keywords",
    "term",
    "terms",
}
_PLACE_NAMES = {"city", "location", "place", "destination", "origin", "town", "region", "where"}
_NAMED_NUMBERS: dict[str, float] = {
    "age": 34,
    "count": 5,
    "limit": 5,
    "n": 3,
    "num": 3,
    "number": 3,
    "max": 10,
    "top": 3,
    "k": 3,
    "size": 10,
    "page": 1,
    "offset": 0,
    "quantity": 2,
    "qty": 2,
    "amount": 42.5,
    "price": 19.99,
    "total": 120,
    "temperature": 18.5,
    "temp": 18.5,
    "celsius": 18.5,
    "latitude": 48.8566,
    "lat": 48.8566,
    "longitude": 2.3522,
    "lon": 2.3522,
    "lng": 2.3522,
    "year": 2026,
    "month": 11,
    "hour": 9,
    "minute": 30,
    "days": 3,
    "hours": 2,
    "minutes": 15,
    "seconds": 30,
    "duration": 30,
    "radius": 5,
    "distance": 12.5,
    "rating": 4,
    "score": 0.87,
    "percent": 25,
    "percentage": 25,
    "weight": 2.5,
    "height": 180,
    "width": 640,
    "guests": 2,
    "people": 2,
    "adults": 2,
    "children": 1,
    "nights": 3,
    "rooms": 1,
    "id": 1042,
}


_FIXED_NUMBER_NAMES = {
    "latitude",
    "lat",
    "longitude",
    "lon",
    "lng",
    "year",
    "month",
    "page",
    "offset",
    "hour",
    "minute",
}


def words_of_name(name: str) -> list[str]:
    """``getWeather`` / ``get_weather`` / ``get-weather`` -> ``["get", "weather"]``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def singular(word: str) -> str:
    """``cities`` -> ``city``, ``tags`` -> ``tag``: the name of one item of a list property."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def named_string(name: str, rng: Random, hints: Hints = NO_HINTS) -> str:
    """A string that reads like a value of a property called ``name``: a city for ``city``, words of the
    conversation for ``query``, else the name's own words and a filler (``"unit alpha"``)."""
    words = words_of_name(name) or [""]
    key = words[-1] if words[-1] in _NAMED_STRINGS or words[-1] in _TEXT_NAMES else singular(words[-1])
    if any(w in _PLACE_NAMES for w in words) and hints.proper_nouns:
        return rng.choice(hints.proper_nouns)
    if key in _TEXT_NAMES and hints.words:
        picked = hints.words[: 1 + rng.randrange(min(3, len(hints.words)))]
        return " ".join(picked)
    if "name" in words and len(words) > 1 and words[0] in ("first", "last"):
        key = words[0]
    if key in _NAMED_STRINGS:
        return rng.choice(_NAMED_STRINGS[key])
    if key in _TEXT_NAMES:
        return rng.choice(("a short summary", "the latest update", "weekly planning"))
    label = " ".join(words) if words != [""] else "value"
    return f"{label} {rng.choice(('one', 'alpha', 'sample', 'north', 'blue'))}"


def formatted_string(fmt: str, rng: Random) -> str | None:
    """A string of the JSON Schema ``format`` (``date-time``, ``email``, ``uuid``, ...); None for one not known here."""
    moment = _dt.datetime(2026, 11, 1, tzinfo=_dt.UTC) + _dt.timedelta(
        days=rng.randrange(60), hours=rng.randrange(8, 19), minutes=rng.choice((0, 15, 30, 45))
    )
    table = {
        "date-time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "date": moment.strftime("%Y-%m-%d"),
        "time": moment.strftime("%H:%M:%SZ"),
        "duration": rng.choice(("PT15M", "PT1H30M", "P3D")),
        "email": rng.choice(_NAMED_STRINGS["email"]),
        "idn-email": rng.choice(_NAMED_STRINGS["email"]),
        "hostname": rng.choice(("api.example.com", "example.org")),
        "idn-hostname": "example.org",
        "ipv4": f"192.0.2.{rng.randrange(1, 255)}",
        "ipv6": f"2001:db8::{rng.randrange(1, 0xFFFF):x}",
        "uri": rng.choice(_NAMED_STRINGS["url"]),
        "url": rng.choice(_NAMED_STRINGS["url"]),
        "iri": rng.choice(_NAMED_STRINGS["url"]),
        "uri-reference": "/docs/getting-started",
        "iri-reference": "/docs/getting-started",
        "uri-template": "https://example.com/items/{id}",
        "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "json-pointer": "/items/0",
        "relative-json-pointer": "0/name",
        "regex": "^[a-z]+$",
    }
    return table.get(fmt)


def named_number(name: str, rng: Random) -> float | None:
    """A number that reads like a value of a property called ``name`` (``age`` 34, ``price`` 19.99), None if the
    name suggests none; varied a little, except where a value reads best as it is (``year``, ``latitude``)."""
    words = words_of_name(name)
    hinted = next((_NAMED_NUMBERS[w] for w in reversed(words) if w in _NAMED_NUMBERS), None)
    if hinted is not None and not _FIXED_NUMBER_NAMES & set(words):
        scaled = hinted * rng.choice((0.8, 1, 1.25, 1.5))  # so repeated fields are not all alike
        hinted = round(scaled) if float(hinted).is_integer() else round(scaled, 2)
    return hinted
