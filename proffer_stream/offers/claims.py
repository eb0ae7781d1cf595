"""What offer copy states, checked against the offer's terms and the customer's own figures.
Pure: time is passed in.

Policy judges the copy like the terms, whoever wrote it. A writer (a model above all) may
say "95% off, today only" over terms of 30% for 30 days; these checks find every figure
the copy states and hold it to what will be issued:

- a percentage ("15%", "thirty percent", "half off") is the discount issued;
- a duration ("for 7 days", "a whole year", "24 hours", "today only") is how long the
  offer is valid; one that ends in "ago" is how long since the customer's last purchase or
  visit; "in the last 7 days" is one of the signal windows (a day or a week);
- a date ("March 24", "24 March 2026", "2026-03-24", "3/24") is the day the offer expires
  (a day either side, for time zones);
- an amount or any other figure ("$50", "89.50", "3 times") is a term (the discount, the
  valid days, a figure of the issued conditions), a figure of the customer's (a count, a
  total, days since), the year, or part of a name the customer gave (a product "Mug 2000").

A claim of the writer's own term where policy changed the term is corrected ("95%" becomes
"30%": the fix is unambiguous); any other contradiction rejects the draft. Figures spelt
out are read with a unit ("two weeks", "thirty percent"); "three times" is not a claim.
Besides figures: links go only to hosts the tenant allows, no markup runs code, and no
text speaks to a model or claims authority.

Speed: this runs on every offer. Each scan is anchored where Python's regular expressions
skip fast (a digit, a currency sign, a keyword's first letter, in lower-cased text) rather
than one pattern of many alternatives tried at every character, which cost 0.2-0.3 ms per
offer (measured on the built-in writer's copy; anchored, about 20 µs).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cached_property
from urllib.parse import urlsplit

from proffer_stream.offers.wording import days_since
from proffer_stream.signals.models import CustomerProfile

MAX_PROBLEMS = 5
"""Most contradictions named per text: enough to say why, not a wall of them."""
MAX_QUOTED_STRINGS = 200
"""Most of a customer's names (pages, features, metadata) read to tell a figure inside a
name from a claim."""

# Numbers in words, as copy spells them with a unit ("a whole year", "twenty-one days").
_ONES = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen"]
_TEENS += ["seventeen", "eighteen", "nineteen"]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_WORD_VALUES: dict[str, int] = {"zero": 0, "a": 1, "an": 1, "single": 1, "hundred": 100}
_WORD_VALUES |= {"a hundred": 100, "one hundred": 100}
_WORD_VALUES |= {w: n for n, w in enumerate(_ONES, 1)} | {w: n for n, w in enumerate(_TEENS, 10)}
for _t, _tens in enumerate(_TENS, 2):
    _WORD_VALUES[_tens] = 10 * _t
    for _o, _one in enumerate(_ONES, 1):
        _WORD_VALUES[f"{_tens}-{_one}"] = _WORD_VALUES[f"{_tens} {_one}"] = 10 * _t + _o
_REVERSED_WORDS = {w[::-1]: n for w, n in _WORD_VALUES.items()}
_WORD_BEFORE = re.compile(
    r"(?P<sep>[\s-]*)(?:(?:elohw|lluf|eritne)\s+)?(?P<word>"
    + "|".join(re.escape(w) for w in sorted(_REVERSED_WORDS, key=len, reverse=True))
    + r")(?![a-z])"
)
"""A number in words ending just before a unit, read backwards (matched at the start of
the reversed text before the unit: anchored, so fast)."""

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_MONTH = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_MONTHS = {m: n for n, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_UNITS = r"hours?|hrs?|days?|weeks?|months?|years?|yrs?|fortnights?"

_DIGIT_START = re.compile(r"[\d$€£¥₹]")
_AT_DIGIT = re.compile(
    rf"""
    (?P<cur>[$€£¥₹]\s?)?
    (?P<num>{_NUM})
    (?:
        (?P<iso>-(?P<iso_m>\d{{1,2}})-(?P<iso_d>\d{{1,2}})(?![\w-]))
      | (?P<pct>\s*(?:[%\uff05\ufe6a]|per\s?cent(?![a-z])|pct(?![a-z])))
      | (?:\s+(?:whole|full|entire))?(?P<sep>[\s-]*)(?P<unit>{_UNITS})(?![a-z])
      | (?P<ccy>\s?(?:usd|eur|gbp|dollars?|euros?|pounds?|bucks)(?![a-z]))
      | (?P<slash>/(?P<sl_b>\d{{1,2}})(?:/(?P<sl_y>\d{{4}}|\d{{2}}))?(?![\w/]))
      | (?:st|nd|rd|th)?(?:
            \s+(?:of\s+)?(?P<month>{_MONTH})(?![a-z])\.?(?:,?\s+(?P<year>\d{{4}})(?!\w))?
          | (?P<alone>(?![\w/]))
        )
    )?
    """,
    re.VERBOSE,
)
"""A figure at a digit or a currency sign: the number once, then what follows it says what
it is (a date, a percentage, a duration, an amount); the number is read once, so a match
costs about a microsecond."""
_NOT_BEFORE_FIGURE = frozenset("/\\#@.,:-")
"""Before a digit, what makes it part of something else (a path, a code, a version)."""
_KEYWORD = re.compile(
    rf"{_UNITS}|percent|per cent|pct|half|today|tonight|tomorrow|midnight",
)
"""Where a figure in words ends (its unit) or a day is named: alternatives that each start
with a letter, so the scan skips to those letters."""
_MONTH_BEFORE = re.compile(rf"(?<![a-z])(?P<month>{_MONTH})\.?\s+$")
_YEAR_AFTER = re.compile(r",?\s+(?P<year>\d{4})(?!\w)")
_AGO = re.compile(r"\s+ago(?![a-z])")
_RATE_WORDS = ("once", "twice", "times", "per", "every", "each")
"""Before a duration, a frequency ("once a day", "every 2 weeks"), not how long it lasts."""
_ENDS = ("end", "ends", "ending", "expire", "expires", "expiring", "until", "till", "through")

_TLDS = (
    "com|net|org|io|co|ai|app|dev|info|biz|me|us|uk|de|fr|es|it|nl|eu|ru|cn|in|ly|gl|gg|xyz"
    "|shop|store|online|site|link|click|top|tk|ml|ga|cf|gq|pw|cc|tv|ws|to|sh|la|ca|au"
    "|example|test|invalid|local|localhost|zip|mov"
)
_TLD = re.compile(rf"\.(?:{_TLDS})(?![a-z0-9-]|\.[a-z0-9])")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
_URL_END = re.compile(r"[\s<>\"'`()\[\]{}]")
_OTHER_SCHEME = re.compile(r"(?:javascript|vbscript|data|file|mailto|tel|sms|intent|ftp):(?=\S)")
_WEB_SCHEMES = ("http", "https")
_MARKUP_CHARS = re.compile(r"<[^>]*>|[<>\[\]*`~#]")
"""What a writer's cleaning takes out of a name it quotes."""

_TAG = re.compile(r"<[^>]*>")
_ACTIVE_TAG = re.compile(
    r"<\s*/?\s*(?:script|style|iframe|frame|object|embed|applet|base|meta|form)\b"
    r"|\son[a-z]+\s*=",
    re.IGNORECASE,
)
"""Markup that runs code or changes the page, not only how text looks."""

_MODEL_WORDS = (
    "ignore", "disregard", "forget", "override", "bypass", "system", "assistant", "developer",
    "admin", "operator", "creator", "owner", "instruction", "prompt", "language model",
    "chatgpt", "jailbreak", "you are", "[", "<|", "###",
)  # fmt: skip
"""A word any text that speaks to a model has: only text with one is searched in full (a
substring test per word is a tenth of the time of one search for them all)."""
_ADDRESSES_MODEL = re.compile(
    r"""
      \b(?:ignore|disregard|forget|override|bypass)\b(?:\W+\w+){0,4}?\W+
        (?:instructions?|prompts?|rules|guidelines|guardrails|directions|directives|context
        |polic(?:y|ies)|limits|constraints)\b
    | \b(?:system|assistant|developer)(?:\s+(?:prompt|message|note|override))?\s*:
    | \[/?(?:system|inst|assistant|sys)\]|<\|[^|]{0,20}\|>|\#\#\#\s*(?:instruction|system|response)
    | \b(?:as|from)\s+(?:your|the)\s+(?:system\s+)?(?:administrator|admin|developer|operator
        |creator)\b
    | \b(?:i\s+am|i'm|this\s+is)\s+(?:your|the)\s+(?:system\s+)?(?:administrator|admin
        |developer|operator|creator|owner)\b
    | \b(?:new|updated|revised|real|hidden|secret|override)\s+(?:instructions?|system\s+prompt)\b
    | \byou\s+are\s+(?:now\s+)?(?:an?\s+|the\s+)?(?:ai|assistant|language\s+model|llm|chatbot)\b
    | \b(?:language\s+model|chatgpt|jailbreak|developer\s+mode|prompt\s+injection)\b
    """,
    re.VERBOSE,
)
"""Text that speaks to a model ("ignore previous instructions", "system:") or claims
authority over it ("as your administrator"): never copy for a customer. Lower case."""


def unescape(text: str) -> str:
    """``text`` with HTML character references resolved, however often escaped
    (``&amp;lt;script&amp;gt;`` is ``<script>``): escaped markup is markup."""
    for _ in range(4):
        if "&" not in text:
            return text
        plain = html.unescape(text)
        if plain == text:
            return text
        text = plain
    return text


def active_markup(text: str) -> str | None:
    """The first tag in ``text`` that runs code or changes the page (a script, an
    ``onerror=``), if any."""
    if "<" not in text:
        return None
    for tag in _TAG.finditer(text):
        if _ACTIVE_TAG.search(tag.group()):
            return tag.group()[:60]
    return None


def addresses_model(text: str, low: str | None = None) -> str | None:
    """The first words of ``text`` that speak to a model or claim authority, if any.

    ``low``: ``lower(text)``, when the caller has it."""
    low = lower(text) if low is None else low
    if not any(word in low for word in _MODEL_WORDS):
        return None
    found = _ADDRESSES_MODEL.search(low)
    return " ".join(text[found.start() : found.end()].split())[:80] if found else None


def links(text: str, allowed_hosts: Iterable[str], low: str | None = None) -> list[str]:
    """Why each link in ``text`` may not be issued: a scheme other than http(s), a host
    the tenant does not allow (a host allowed allows its subdomains). A link is an address
    with a scheme, or a host name with a known top-level domain (e-mail addresses too)."""
    low = lower(text) if low is None else low
    allowed = tuple(allowed_hosts)
    problems: dict[str, None] = {}
    hosts: dict[str, str] = {}  # host: the link that names it
    if ":" in low:
        for other in _OTHER_SCHEME.finditer(low):
            name = other.group()[:-1]
            problems[f"{_link_at(text, other.start())!r}: {name} links are never allowed"] = None
        at = low.find("://")
        while at != -1:
            start = at
            while start > 0 and (low[start - 1].isalnum() or low[start - 1] in "+.-"):
                start -= 1
            link = _link_at(text, start)
            scheme = low[start:at]
            host = _host(link)
            if scheme not in _WEB_SCHEMES:
                problems[f"{link!r}: {scheme or 'schemeless'} links are never allowed"] = None
            elif host is None:
                problems[f"{link!r}: a link with no readable host"] = None
            else:
                hosts.setdefault(host, link)
            at = low.find("://", at + 3)
    if "." in low:
        for tld in _TLD.finditer(low):
            start = tld.start()
            while start > 0 and low[start - 1] in _HOST_CHARS:
                start -= 1
            host = low[start : tld.end()].strip(".-")
            if "." in host and not low[start - 1 : start] == "/":
                hosts.setdefault(host, _link_at(text, start))
    for host, link in hosts.items():
        if not any(host == h or host.endswith("." + h) for h in allowed):
            problems[f"{link!r}: {host} is not a host the policy allows"] = None
    return list(problems)


def _link_at(text: str, start: int) -> str:
    end = _URL_END.search(text, start)
    return text[start : end.start() if end else len(text)][:80]


def _host(url: str) -> str | None:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.rstrip(".").lower() if host else None


def lower(text: str) -> str:
    """``text`` in lower case, each character where it was (a few characters lower to two)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


class CopyFacts:
    """What copy may state: the offer's terms as issued (and as drafted, to correct a claim
    of the draft's where policy changed the term), and the customer's own figures."""

    def __init__(
        self,
        *,
        offer_type: str,
        percent: int | None,
        drafted_percent: int | None,
        valid_days: int,
        drafted_days: int,
        profile: CustomerProfile,
        now: datetime,
        conditions: str = "",
    ) -> None:
        self.offer_type = offer_type
        self.percent = percent
        self.drafted_percent = drafted_percent
        self.valid_days = valid_days
        self.drafted_days = drafted_days
        self.profile = profile
        self.now = now
        self.conditions = conditions
        self.expires = (now + timedelta(days=valid_days)).date()

    @cached_property
    def past_days(self) -> frozenset[int]:
        """Days since the customer's last purchase and last visit."""
        days = (
            days_since(self.profile.last_purchase_at, self.now),
            days_since(self.profile.last_seen_at, self.now),
        )
        return frozenset(d for d in days if d is not None)

    @cached_property
    def counts(self) -> frozenset[int]:
        """Every whole figure copy may state on its own: the terms, the customer's counts,
        days since, the year."""
        p = self.profile
        counts = {p.event_count, p.purchase_count, p.cart_abandon_count, self.valid_days}
        for table in (p.page_views, p.features_used, p.counts_by_type):
            counts.update(table.values())
        counts.update((self.now.year, self.expires.year, *self.past_days))
        if self.percent is not None:
            counts.add(self.percent)
        return frozenset(counts)

    def is_amount(self, figure: str) -> bool:
        """Whether ``figure`` is one of the customer's totals (as given or to the cent) or
        a figure of the conditions."""
        said = _decimal(figure)
        if said is None:
            return False
        for total in (self.profile.purchase_total, self.profile.cart_abandon_total):
            if said == total or (total.is_finite() and said == round(total, 2)):
                return True
        return said in self._conditions

    def is_figure(self, figure: str) -> bool:
        """Whether ``figure`` is a figure copy may state on its own: a count or an amount."""
        if figure.isdecimal():  # most figures: read as an integer, no Decimal
            return int(figure) in self.counts or self.is_amount(figure)
        said = _decimal(figure)
        if said is not None and said == said.to_integral_value() and int(said) in self.counts:
            return True
        return self.is_amount(figure)

    @cached_property
    def _conditions(self) -> list[Decimal]:
        return [n for n in map(_decimal, re.findall(_NUM, self.conditions)) if n is not None]

    @cached_property
    def _names(self) -> list[str]:
        """The customer's own strings that hold a digit (a name, a product, a page), as
        given and as a writer's cleaning leaves them."""
        p = self.profile
        strings: list[str] = [p.name or ""]
        strings += [v for v in p.metadata.values() if isinstance(v, str)]
        strings += [*p.page_views, *p.features_used]
        names: list[str] = []
        for s in strings[:MAX_QUOTED_STRINGS]:
            if any(c.isdigit() for c in s):
                names += {s, " ".join(_MARKUP_CHARS.sub("", s).split())}
        return [n for n in names if n]

    def quoted(self, text: str, start: int, end: int) -> bool:
        """Whether ``text[start:end]`` lies inside one of the customer's own names."""
        for name in self._names:
            at = text.find(name, max(0, end - len(name)))
            while at != -1 and at <= start:
                if at + len(name) >= end:
                    return True
                at = text.find(name, at + 1)
        return False


@dataclass(slots=True)
class _Claim:
    """One figure the copy states, where it is and how to read it."""

    kind: str  # date, money, percent, span, today, tomorrow, number
    start: int
    end: int
    value: Decimal | None = None
    figure: str = ""  # a number's text, read as a Decimal only when its text is not known
    unit: str = ""
    ago: bool = False
    window: bool = False
    hyphen: bool = False
    dates: tuple[tuple[int | None, int, int], ...] = ()  # (year or None: near, month, day)


def find_claims(text: str, low: str | None = None) -> list[_Claim]:
    """Every figure ``text`` states, in order."""
    low = lower(text) if low is None else low
    claims: list[_Claim] = []
    pos = 0
    while (digit := _DIGIT_START.search(low, pos)) is not None:
        found = _AT_DIGIT.match(low, digit.start())
        if found is None:  # a currency sign alone
            pos = digit.start() + 1
            continue
        claim = _digit_claim(found, low)
        if claim is not None:
            claims.append(claim)
        pos = found.end()
    taken = [(c.start, c.end) for c in claims]
    for keyword in _KEYWORD.finditer(low):
        start, end = keyword.span()
        if (start and low[start - 1].isalpha()) or (end < len(low) and low[end].isalpha()):
            continue  # inside a word: "birthday", "yearly"
        if any(s <= start < e for s, e in taken):
            continue
        claim = _word_claim(keyword.group(), start, end, low)
        if claim is not None:
            claims.append(claim)
    claims.sort(key=lambda c: c.start)
    return claims


def _digit_claim(found: re.Match[str], low: str) -> _Claim | None:
    start, end = found.span()
    before = low[start - 1] if start else " "
    number = found["num"]
    if found["pct"] is not None:  # "$50%" reads as 50% too: a percentage first
        return _Claim("percent", start, end, _decimal(number))
    if found["cur"] is not None:
        return _Claim("money", start, end, figure=number)
    if found["unit"] is not None:
        claim = _Claim("span", start, end, _decimal(number), unit=_unit(found["unit"]))
        claim.hyphen = "-" in found["sep"]
        return _around_span(claim, low)
    if before.isalnum() or before == "_":
        return None  # part of a word: "v2", "abc123"
    short = len(number) <= 2
    if found["iso"] is not None and len(number) == 4 and before != ".":
        return _Claim(
            "date", start, end, dates=((int(number), int(found["iso_m"]), int(found["iso_d"])),)
        )
    if found["ccy"] is not None and before not in ".,":
        return _Claim("money", start, end, figure=number)
    if found["slash"] is not None and short and before != "/":
        a, b, y = int(number), int(found["sl_b"]), found["sl_y"]
        year = None if y is None else int(y) + (2000 if len(y) == 2 else 0)
        return _Claim("date", start, end, dates=((year, a, b), (year, b, a)))
    if found["month"] is not None and short and before not in ".,":
        named = int(found["year"]) if found["year"] else None
        return _Claim(
            "date", start, end, dates=((named, _MONTHS[found["month"][:3]], int(number)),)
        )
    if found["alone"] is None or before in _NOT_BEFORE_FIGURE:
        return None
    if short and (month := _month_before(low, start)) is not None:  # "March 24", ", 2026"?
        after = _YEAR_AFTER.match(low, end)
        claim = _Claim("date", month.start(), after.end() if after else end)
        named = int(after["year"]) if after else None
        claim.dates = ((named, _MONTHS[month["month"][:3]], int(number)),)
        return claim
    return _Claim("number", start, end, figure=number)


def _month_before(low: str, start: int) -> re.Match[str] | None:
    """The month named just before ``start`` ("march 24"), if one is."""
    if start < 4 or low[start - 1] != " ":
        return None
    word = low[low.rfind(" ", max(0, start - 12), start - 1) + 1 : start - 1]
    if word[:3] not in _MONTHS:  # most numbers: no search
        return None
    return _MONTH_BEFORE.search(low, max(0, start - 12), start)


def _word_claim(keyword: str, start: int, end: int, low: str) -> _Claim | None:
    if keyword == "half":  # "half off", "half-price"
        for suffix in (" off", "-off", " price", "-price"):
            if low.startswith(suffix, end):
                return _Claim("percent", start, end + len(suffix), Decimal(50))
        return None
    before = low[max(0, start - 14) : start].split()
    if keyword in ("today", "tonight", "midnight", "tomorrow"):
        only = low.startswith(" only", end)
        ends = bool(before) and before[-1] in (*_ENDS, "valid")
        if keyword == "tomorrow":
            return _Claim("tomorrow", start, end) if ends else None
        if ends or only or (before and before[-1] == "only"):
            return _Claim("today", start, end + (5 if only else 0))
        return None
    number = _WORD_BEFORE.match(low[max(0, start - 40) : start][::-1])
    if number is None:
        if keyword == "day" and before and before[-1] == "last":  # "last day"
            return _Claim("today", start - 5, end)
        return None
    value = Decimal(_REVERSED_WORDS[number["word"]])
    claim_start = start - number.end()
    if keyword in ("percent", "per cent", "pct"):
        return _Claim("percent", claim_start, end, value)
    claim = _Claim("span", claim_start, end, value, unit=_unit(keyword))
    claim.hyphen = "-" in number["sep"]
    return _around_span(claim, low)


def _around_span(claim: _Claim, low: str) -> _Claim:
    """A duration's reading from the words around it: a frequency is no claim ("once a
    day": returned as a number that always holds), "ago" and "last"/"past" are the past."""
    before = low[max(0, claim.start - 8) : claim.start].split()
    if before and before[-1] in _RATE_WORDS:
        claim.kind = "rate"
    elif before and before[-1] in ("last", "past"):
        claim.window = True
    ago = _AGO.match(low, claim.end)
    if ago is not None:
        claim.ago, claim.end = True, ago.end()
    return claim


def check_figures(
    text: str, facts: CopyFacts, *, terms_only: bool = False, low: str | None = None
) -> tuple[str, list[str], list[str]]:
    """``text`` with the claims of the draft's terms corrected to the issued terms, what was
    corrected, and every claim that contradicts the terms or the customer's figures.

    ``terms_only``: check only percentages, durations and dates (the conditions, whose
    other figures are terms themselves).
    """
    low = lower(text) if low is None else low
    if agrees_at_a_glance(low, facts, terms_only=terms_only):
        return text, [], []
    corrections: list[str] = []
    problems: list[str] = []
    pieces: list[str] = []
    done = 0
    for claim in find_claims(text, low):
        if claim.start < done or (terms_only and claim.kind in ("money", "number")):
            continue
        outcome = _CHECKS[claim.kind](claim, facts, text)
        if outcome is None:
            continue
        said = " ".join(text[claim.start : claim.end].split())
        if isinstance(outcome, _Fix):
            corrections.append(f"{said!r} changed to {outcome.text!r}")
            pieces += [text[done : claim.start], outcome.text]
            done = claim.end
        elif len(problems) < MAX_PROBLEMS:
            problems.append(f"{said!r} {outcome}")
    if not pieces:
        return text, corrections, problems
    return "".join([*pieces, text[done:]]), corrections, problems


def agrees_at_a_glance(low: str, facts: CopyFacts, *, terms_only: bool = False) -> bool:
    """Whether every figure of ``low`` plainly agrees: the common case (the built-in
    writer's copy, most models' copy), decided without reading claims one by one. False
    sends the text to the full reading, which also says what is wrong."""
    for keyword in _KEYWORD.finditer(low):
        start = keyword.start()
        if start and low[start - 1].isalpha():
            continue  # inside a word: "birthday"
        if start > 1 and low[start - 1] in " -" and low[start - 2].isdecimal():
            continue  # the unit of a figure ("7 days"): read below
        return False
    pos = 0
    while (digit := _DIGIT_START.search(low, pos)) is not None:
        found = _AT_DIGIT.match(low, digit.start())
        if found is None:
            return False
        start, pos = found.span()
        kind = found.lastgroup
        if low[start] in "$€£¥₹" and kind != "pct":  # "$50%" is a percentage
            if terms_only:
                continue
            return False
        if kind == "unit":
            n, unit = Decimal(found["num"]), _unit(found["unit"])
            words = low[max(0, start - 8) : start].split()
            if words and words[-1] in (*_RATE_WORDS, "last", "past"):
                return False  # "every 2 weeks", "in the last 7 days": read in full
            if low.startswith(" ago", pos):
                if not any(_ago_agrees(n, unit, d) for d in facts.past_days):
                    return False
            elif not _lasts(n, unit, facts.valid_days):
                return False
        elif kind == "pct":
            if facts.percent is None or _decimal(found["num"]) != facts.percent:
                return False
        elif kind == "alone":
            before = low[start - 1] if start else " "
            if before.isalnum() or before == "_" or before in _NOT_BEFORE_FIGURE or terms_only:
                continue
            if not facts.is_figure(found["num"]) or _month_before(low, start) is not None:
                return False
        elif kind != "num":  # a date, an amount: read in full
            return False
    return True


@dataclass(frozen=True, slots=True)
class _Fix:
    """A claim of the draft's term, rewritten to the issued term."""

    text: str


# A check: None when the claim holds, a _Fix, or why it contradicts.
def _percent(claim: _Claim, facts: CopyFacts, text: str) -> _Fix | str | None:
    said = claim.value
    if facts.percent is None:
        return f"states a discount, but this {facts.offer_type} offer has none"
    if said == facts.percent:
        return None
    if said == facts.drafted_percent:
        return _Fix(f"{facts.percent}%")
    return f"states a {said}% discount, but the discount is {facts.percent}%"


def _span(claim: _Claim, facts: CopyFacts, text: str) -> _Fix | str | None:
    n, unit = claim.value, claim.unit
    if n is None:
        return "is not a figure that can be read"
    if claim.ago:
        if any(_ago_agrees(n, unit, d) for d in facts.past_days):
            return None
        return "agrees with no purchase or visit of the customer's"
    if claim.window:
        if _lasts(n, unit, 1) or _lasts(n, unit, 7):
            return None
        return "is not a window the customer's signals count (a day or a week)"
    if _lasts(n, unit, facts.valid_days):
        return None
    if _lasts(n, unit, facts.drafted_days) and facts.valid_days > 0:
        days = facts.valid_days
        return _Fix(f"{days}-day" if claim.hyphen else _days(days))
    return f"but the offer is valid for {_days(facts.valid_days)}"


def _today(claim: _Claim, facts: CopyFacts, text: str) -> str | None:
    if facts.valid_days <= 1:
        return None
    return f"but the offer is valid for {_days(facts.valid_days)}"


def _tomorrow(claim: _Claim, facts: CopyFacts, text: str) -> str | None:
    if facts.valid_days in (1, 2):
        return None
    return f"but the offer is valid for {_days(facts.valid_days)}"


def _date(claim: _Claim, facts: CopyFacts, text: str) -> str | None:
    allowed = {facts.expires + timedelta(days=k) for k in (-1, 0, 1)}
    near = (facts.expires.year - 1, facts.expires.year, facts.expires.year + 1)
    for year, month, day in claim.dates:
        for y in near if year is None else (year,):
            try:
                if date(y, month, day) in allowed:
                    return None
            except ValueError:
                continue
    return f"but the offer expires on {facts.expires.isoformat()}"


def _money(claim: _Claim, facts: CopyFacts, text: str) -> str | None:
    if facts.is_amount(claim.figure) or facts.quoted(text, claim.start, claim.end):
        return None
    return "is neither a term of the offer nor a figure of the customer's"


def _number(claim: _Claim, facts: CopyFacts, text: str) -> str | None:
    if facts.is_figure(claim.figure) or facts.quoted(text, claim.start, claim.end):
        return None
    return "is neither a term of the offer nor a figure of the customer's"


def _rate(claim: _Claim, facts: CopyFacts, text: str) -> None:
    return None


_CHECKS = {
    "date": _date,
    "money": _money,
    "percent": _percent,
    "span": _span,
    "today": _today,
    "tomorrow": _tomorrow,
    "number": _number,
    "rate": _rate,
}


def _decimal(figure: str | None) -> Decimal | None:
    try:
        return Decimal(figure.replace(",", "")) if figure else None
    except InvalidOperation:
        return None


def _unit(word: str) -> str:
    word = word.rstrip("s")
    return {"hr": "hour", "yr": "year"}.get(word, word)


_UNIT_DAYS = {
    "day": (1, 1),
    "week": (7, 7),
    "fortnight": (14, 14),
    "month": (28, 31),
    "year": (365, 366),
}


def _lasts(n: Decimal, unit: str, days: int) -> bool:
    """Whether ``n`` ``unit`` is a validity of ``days`` days (a month: 28 to 31 days)."""
    if unit == "hour":
        return n == 24 * days or (days == 0 and 0 < n <= 24)
    least, most = _UNIT_DAYS[unit]
    return n * least <= days <= n * most


def _ago_agrees(n: Decimal, unit: str, days: int) -> bool:
    """Whether "``n`` ``unit`` ago" describes ``days`` days ago ("3 weeks ago": 21 to 27)."""
    if unit == "hour":
        return 24 * days <= n < 24 * (days + 1)
    if unit == "day":
        return n == days
    least, most = _UNIT_DAYS[unit]
    return n * least <= days < (n + 1) * most


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"
