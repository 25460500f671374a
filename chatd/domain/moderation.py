"""Contacts filter: find phone numbers, e-mails, links, handles and platform names in a message.

The wire contract forbids inviting the other side to another platform or exchanging
contacts. ``find_contacts`` returns every forbidden fragment as a span of the *original*
text; the caller refuses the message with ``contacts_forbidden`` when the list is not empty.

How it works
============

1. **Normalise, keeping an index map.** The text is lowercased, ``ё`` becomes ``е``, dashes
   and exotic spaces become ``-`` and ``' '``. When the text contains something unusual
   (zero-width or other invisible characters, combining marks such as stress marks,
   fullwidth or "mathematical" letters, circled digits, look-alikes from Unicode's
   confusables data such as Greek letters or Arabic-Indic digits: ``confusables.py``), those
   characters are folded (by the table, else NFKC) or dropped, and a list mapping every
   normalised character back to its original index is kept. The common case needs no map,
   because every step there keeps the length.

2. **Homoglyph views.** A word that mixes Cyrillic and Latin letters ("тeлеграм" with a
   Latin ``e``) is a typical evasion. Such words are folded both ways: once to Cyrillic, once
   to Latin, giving two extra views of the same length. Words written in a single script are
   never folded, so a Latin "BK" does not turn into "вк". Every detector runs on every view.
   A word of digits and letters that stand in for digits ("9I6", "4О") gives one more view,
   with those letters read as digits, for the phone detector only.

3. **Detectors** (each a precompiled regex plus a little code):

   * *phone*: a "run" is a sequence of digit groups (or digits spelled as words,
     "восемь девятьсот шестнадцать ...") joined by separators: any run of characters that are
     neither letters nor digits, nor "+" (the contract says "with any separators"). Inside a
     run, for every group we look for the longest sequence of whole groups whose digits
     have a phone's **shape**: ``8`` + ten digits, ``+7`` + ten
     digits (also ``7`` + ten digits when the national part starts with 9), ten digits
     starting with ``9``, ``+375``/``+998`` + nine digits (without ``+`` only when written
     in groups: a solid 12-digit run is more likely an article), or any ``+`` followed by
     10-13 digits. Only whole groups count: "42 44 46" or "1 186" are never cut into pieces
     that happen to look like a phone.
     A shaped number is still **not** a phone when it is *introduced* as an article, order or
     tracking number (or a barcode / tax id): right before it (looking back at most 80
     characters) stands a keyword such as "артикул", "арт.", "заказ", "трек", separated from
     the number only by punctuation, "№", "номер", marketplace tags ("WB") or other numbers
     of the same list. A keyword further away ("по заказу звоните 8916...") or behind a full
     stop does not count, so it cannot be used as a shield. A number with ``+`` is always a
     phone. (The wire contract exempts every introduced number, a mobile's shape included:
     "номер заказа 89123456789" passes, and so does "трек 89161234567"; protocol/DECISIONS.md
     says why chatd keeps to the contract there.)
   * *email*: ``local@domain.tld``, ``local@domain``, and spelled-out forms ("собака", "at",
     "(at)", "[dot]", "точка"); the spelled forms need a known top-level domain or a mail
     service's name ("ivan собака mail").
   * *link*: URLs with a scheme or ``www.``, and bare domains whose last label is a known
     top-level domain, also with a spaced or bracketed dot ("shop . ru", "shop[.]ru"). The
     TLD list is what keeps "т.е.", "и т.д.", "27.53" or "04.03.2023" from looking like links.
   * *handle*: ``@name``, ``@ name``; and ``platform: name`` / ``тг @name`` /
     ``телеграм shop_2024``, where the name after a platform word is taken into the span.
   * *platform*: names of messengers, social networks and rival marketplaces in Russian and
     Latin spelling with common slang and typos, as whole words only (Python's ``\\w`` is
     Unicode-aware, so "вкус", "tgif", "maximum" and "Максим" pass). Words that are also
     ordinary words are only flagged in context: "max"/"макс" and "signal"/"сигнал" next to
     "мессенджер" or as "в максе"; "юла" as "на юле"; "тг" not after a number (it is also the
     tenge sign).
   * *spaced names*: three single letters or more with only separators between them ("т е л
     е г р а м") are read together, and a name of three letters or more in them counts.
     Two-letter names spaced out ("в к", "t.g") are patterns of the platform list.

   A number split over several messages of one side is found by reading the new message
   after the end of that side's last ones (``number_tail``, ``continued_contacts``): the
   chat's state keeps that end, folded by ``evolve``.

4. **Merge.** Spans are mapped back to the original text, sorted and overlapping ones merged;
   the merged span keeps the most specific kind (email > link > phone > handle > platform).

Speed and safety
================

``find_contacts`` runs on every message, and most messages are clean. A pre-screen says so
without running the detectors: two regex scans of the lowercased text look for anything a
detector could start from (ten digits across separators, a number word next to another
number, "@", "://", "www.", a dot before a known TLD, a platform name, a character that needs
the careful fold, a word that mixes scripts, a digit next to a letter that stands for one),
built from the detectors' own lists; single letters in a row get the spaced-names detector
itself, as "S, M, L" is too common to send to the full rules. Only
when there is one do the full rules run; the comment before ``_certainly_clean`` says why
that is safe, and a property test checks the pre-screen against the full rules.

The full rules keep their own common case cheap too: substring checks ("@" in text,
"://" in text, ...) decide whether a detector's regex runs at all; patterns start with a
literal or a character class where possible, which lets the regex engine skip positions
that cannot start a match; the slow per-character fold and the homoglyph views only happen
for texts that need them.

No pattern can backtrack catastrophically: repeated parts are separated by disjoint
character classes or possessive quantifiers (``++``, ``*+``), and patterns that would
otherwise be retried from every position of a long word are anchored with a lookbehind
to the word's start. The tests run 1000-character adversarial inputs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, NamedTuple

from chatd.domain.confusables import CONFUSABLES

__all__ = ["ContactFinding", "continued_contacts", "find_contacts", "number_tail"]


@dataclass(frozen=True, slots=True)
class ContactFinding:
    start: int  # character offset into the original text (Python str index), inclusive
    end: int  # exclusive
    kind: str  # "phone" | "email" | "link" | "handle" | "platform"


# A span found in a normalised view: (start, end, kind), offsets into that view.
_Span = tuple[int, int, str]

# When overlapping findings are merged, the smaller number wins: an e-mail that contains
# digits is reported as an e-mail, "vk.com/shop" as a link rather than a platform name.
_KIND_PRIORITY: Final[Mapping[str, int]] = MappingProxyType(
    {"email": 0, "link": 1, "phone": 2, "handle": 3, "platform": 4}
)


# --------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------

# Characters that need the careful fold, one by one: soft hyphen, combining marks, zero-width
# and bidi controls and other invisible format characters, super/subscripts, circled digits,
# fullwidth forms, mathematical alphanumerics, "İ" (the only character whose lowercase is
# two characters long), and look-alikes of Latin and Russian letters and of digits (the
# confusables table: "τεlegram", Arabic-Indic digits). Everything else only needs lower().
_NEEDS_FOLD_CHARS: Final = (
    "\u00ad\u0130\u0300-\u036f\u061c\u1ab0-\u1aff\u180e\u1dc0-\u1dff\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u2070-\u209f\u20d0-\u20ff\u2460-\u24ff\ufe00-\ufe0f"
    "\ufe20-\ufe2f\ufeff\uff00-\uffef\ufff9-\ufffb\U0001d400-\U0001d7ff"
    # Look-alikes from Unicode's confusables data (Greek, rarer Cyrillic, other scripts'
    # letters and digits): chatd/domain/confusables.py, generated by tools/gen_confusables.py.
    # Those past U+FFFF go in as two broad ranges: the regex engine tests such characters of
    # a class one by one, on every character it reads. The ranges hold no emoji.
    + "".join(char for char in CONFUSABLES if char <= "\uffff")
    + "\U00010000-\U0001efff\U0001f700-\U0001f77f"
)
_NEEDS_FOLD: Final[re.Pattern[str]] = re.compile(f"[{_NEEDS_FOLD_CHARS}]")

# Length-preserving replacements of dashes and spaces, applied after lowercasing.
# str.translate() with a table is slow on Cyrillic text (it looks up every character: about
# 50 µs for 1000 characters), so each character present gets one str.replace() instead.
_DASHES: Final = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_SPACES: Final = (
    "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
)
_PUNCT_TABLE: Final[Mapping[int, str]] = MappingProxyType(
    str.maketrans({**dict.fromkeys(_DASHES, "-"), **dict.fromkeys(_SPACES, " ")})
)
_NEEDS_PUNCT_TABLE: Final[re.Pattern[str]] = re.compile(f"[{_DASHES}{_SPACES}]")

# Lowercase letters that look alike in Latin and Cyrillic (as typed, upper or lower case);
# "і" is the Ukrainian and Belarusian letter.
_LATIN_LOOKALIKES: Final = "abcehikmoptxy"
_CYRILLIC_LOOKALIKES: Final = "авсенікмортху"
_TO_CYRILLIC: Final[Mapping[int, int]] = MappingProxyType(
    str.maketrans(_LATIN_LOOKALIKES, _CYRILLIC_LOOKALIKES)
)
_TO_LATIN: Final[Mapping[int, int]] = MappingProxyType(
    str.maketrans(_CYRILLIC_LOOKALIKES, _LATIN_LOOKALIKES)
)

# A Latin letter next to a Cyrillic one: the mark of a mixed word. Starting with a character
# class lets the regex engine skip over Cyrillic text quickly; the common case is no match.
_CYRILLIC: Final = "[а-яі]"
_SCRIPT_MIX: Final[re.Pattern[str]] = re.compile(rf"[a-z](?:(?<={_CYRILLIC}.)|{_CYRILLIC})")


class _Normalised(NamedTuple):
    """Views of the text to search, plus the way back to original offsets."""

    views: tuple[str, ...]
    # For every character of a view: the original index where it starts / ends.
    # ``None`` means the views are index-aligned with the original text.
    starts: tuple[int, ...] | None
    ends: tuple[int, ...] | None
    # The first view with letters that stand in for digits read as digits, when it has any
    # ("8 9I6 I23 45 67"); only the phone detector reads it.
    digits: str | None = None

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        if self.starts is None or self.ends is None:
            return start, end
        return self.starts[start], self.ends[end - 1]


def _fold_char(char: str, index: int, chars: list[str], starts: list[int], ends: list[int]) -> None:
    """Append the fold of one unusual character, recording where it came from."""
    category = unicodedata.category(char)
    if category == "Cf":  # zero-width and bidi controls, soft hyphen: invisible padding
        return
    if category == "Mn":
        # A combining mark: compose it with the previous letter when a precomposed letter
        # exists ("и" + breve = "й"), otherwise drop it (stress marks and the like).
        if chars:
            composed = unicodedata.normalize("NFC", chars[-1] + char)
            if len(composed) == 1:
                chars[-1] = composed
            ends[-1] = index + 1
        return
    target = CONFUSABLES.get(char)
    if target is not None:
        chars.append(target)
        starts.append(index)
        ends.append(index + 1)
        return
    for folded in unicodedata.normalize("NFKC", char).lower():
        chars.append(folded)
        starts.append(index)
        ends.append(index + 1)


def _fold_slowly(text: str) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    """Lowercase, and NFKC-fold the unusual characters, recording original offsets.

    Ordinary stretches between unusual characters are copied in bulk: per-character
    Unicode calls are slow enough to matter on a 1000-character message.
    """
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    position = 0
    for unusual in _NEEDS_FOLD.finditer(text):
        index = unusual.start()
        chars.extend(text[position:index].lower())
        starts.extend(range(position, index))
        ends.extend(range(position + 1, index + 1))
        _fold_char(unusual.group(), index, chars, starts, ends)
        position = index + 1
    chars.extend(text[position:].lower())
    starts.extend(range(position, len(text)))
    ends.extend(range(position + 1, len(text) + 1))
    return "".join(chars), tuple(starts), tuple(ends)


def _fold_words(norm: str, words: list[tuple[int, int]], table: Mapping[int, int]) -> str:
    """`norm` with the letters of the given words translated; the length does not change."""
    parts: list[str] = []
    position = 0
    for start, end in words:
        parts.append(norm[position:start])
        parts.append(norm[start:end].translate(table))
        position = end
    parts.append(norm[position:])
    return "".join(parts)


def _mixed_words(norm: str) -> list[tuple[int, int]]:
    """Spans of the words that contain both a Latin and a Cyrillic letter."""
    words: list[tuple[int, int]] = []
    end = 0
    for mix in _SCRIPT_MIX.finditer(norm):
        if mix.start() < end:
            continue  # inside the word found last; keeps the scan linear
        start, end = mix.start(), mix.end()
        while start > 0 and norm[start - 1].isalpha():
            start -= 1
        while end < len(norm) and norm[end].isalpha():
            end += 1
        words.append((start, end))
    return words


def _script_views(norm: str) -> tuple[str, ...]:
    """The text itself, plus Cyrillic- and Latin-folded views when it has mixed words."""
    mixed = _mixed_words(norm)
    if not mixed:
        return (norm,)
    return (norm, _fold_words(norm, mixed, _TO_CYRILLIC), _fold_words(norm, mixed, _TO_LATIN))


# Letters that stand in for digits inside a number ("8 9I6 I23 45 67", "8916 1з4 5б 7"),
# lowercased and after the careful fold (which also turns other scripts' digits into
# ASCII ones). Only in a word of digits and such letters with at least one digit, so that
# "iPhone", "ТОО" or "XL" never become numbers.
_DIGIT_LOOKALIKES: Final = "oоilізб"
_TO_DIGITS: Final[Mapping[int, int]] = MappingProxyType(str.maketrans(_DIGIT_LOOKALIKES, "0011136"))
_DIGIT_BESIDE_LOOKALIKE: Final[re.Pattern[str]] = re.compile(
    f"[0-9](?=[{_DIGIT_LOOKALIKES}])|[{_DIGIT_LOOKALIKES}](?=[0-9])"
)
_DIGITS_AND_LOOKALIKES: Final[re.Pattern[str]] = re.compile(f"[0-9{_DIGIT_LOOKALIKES}]+")


def _digit_view(view: str) -> str | None:
    """`view` with the look-alike letters of number-like words read as digits, or None."""
    words: list[tuple[int, int]] = []
    end = 0
    for hit in _DIGIT_BESIDE_LOOKALIKE.finditer(view):
        if hit.start() < end:
            continue  # inside the word found last; keeps the scan linear
        start, end = hit.start(), hit.end()
        while start > 0 and view[start - 1].isalnum():
            start -= 1
        while end < len(view) and view[end].isalnum():
            end += 1
        if _DIGITS_AND_LOOKALIKES.fullmatch(view, start, end):
            words.append((start, end))
    return _fold_words(view, words, _TO_DIGITS) if words else None


def _fold_cheaply(lowered: str) -> str:
    """Length-preserving folds: "ё" to "е", dashes to "-", exotic spaces to " "."""
    lowered = lowered.replace("ё", "е")
    for char in set(_NEEDS_PUNCT_TABLE.findall(lowered)):
        lowered = lowered.replace(char, _PUNCT_TABLE[ord(char)])
    return lowered


def _normalise(text: str) -> _Normalised:
    lowered = text.lower()
    # lower() never shortens a string, so equal length means a one-to-one mapping.
    if len(lowered) == len(text) and _NEEDS_FOLD.search(text) is None:
        view = _fold_cheaply(lowered)
        return _Normalised(_script_views(view), None, None, _digit_view(view))
    folded, starts, ends = _fold_slowly(text)
    view = _fold_cheaply(folded)
    return _Normalised(_script_views(view), starts, ends, _digit_view(view))


# --------------------------------------------------------------------------------------
# Shared vocabulary
# --------------------------------------------------------------------------------------


def _alternation(words: tuple[str, ...]) -> str:
    """A regex alternation, longest alternative first so that prefixes do not win early."""
    return "|".join(sorted(words, key=len, reverse=True))


def _starts_word(view: str, index: int) -> bool:
    """Whether `index` is the start of a word; the same test as the regex ``(?<!\\w)``."""
    if index == 0:
        return True
    before = view[index - 1]
    return not (before.isalnum() or before == "_")


# Top-level domains that make "label.tld" a link. Deliberately a closed list: ordinary text
# with dots ("т.е.", "27.53", "04.03.2023", "S.M") never ends in one of these.
_TLD_NAMES: Final = (
    "ru", "su", "com", "net", "org", "info", "biz", "pro", "by", "kz", "uz", "ua",
    "kg", "tj", "am", "az", "ge", "md", "uk", "de", "eu", "us", "io", "co", "me",
    "cc", "ly", "gl", "ee", "be", "gg", "fm", "ai", "tv", "app", "dev", "site",
    "online", "shop", "store", "tech", "link", "page", "xyz", "top", "club", "space",
    "blog", "website", "click", "vip", "icu",
    "рф", "рус", "бел", "ру", "ком",
)  # fmt: skip
_TLDS: Final = _alternation(_TLD_NAMES)


# --------------------------------------------------------------------------------------
# Phones
# --------------------------------------------------------------------------------------

# Digits spelled as words. Values >= 10 let "сто двадцать три" become one group "123".
_NUMBER_WORDS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "ноль": 0, "нуль": 0, "один": 1, "одна": 1, "два": 2, "две": 2, "три": 3,
        "четыре": 4, "пять": 5, "шесть": 6, "семь": 7, "восемь": 8, "девять": 9,
        "десять": 10, "одиннадцать": 11, "двенадцать": 12, "тринадцать": 13,
        "четырнадцать": 14, "пятнадцать": 15, "шестнадцать": 16, "семнадцать": 17,
        "восемнадцать": 18, "девятнадцать": 19, "двадцать": 20, "тридцать": 30,
        "сорок": 40, "пятьдесят": 50, "шестьдесят": 60, "семьдесят": 70,
        "восемьдесят": 80, "девяносто": 90, "сто": 100, "двести": 200, "триста": 300,
        "четыреста": 400, "пятьсот": 500, "шестьсот": 600, "семьсот": 700,
        "восемьсот": 800, "девятьсот": 900,
        "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
        "seven": 7, "eight": 8, "nine": 9,
    }
)  # fmt: skip

_NUMBER_WORD_ALTERNATION: Final = _alternation(tuple(_NUMBER_WORDS))

# One token of a run: a solid digit group (possessive, so it is never split and re-tried)
# or a number word.
_NUMBER_TOKEN: Final = rf"[0-9]++|(?<!\w)(?:{_NUMBER_WORD_ALTERNATION})(?!\w)"
_TOKEN: Final[re.Pattern[str]] = re.compile(_NUMBER_TOKEN)
_DIGITS: Final[re.Pattern[str]] = re.compile(r"[0-9]+")

# What may stand between the tokens of a phone: the contract says "with any separators", so
# any run of characters that are neither letters nor digits: "8 (916) 123-45-67",
# "8/916/123", "8_916*123", a newline, a run of spaces or dashes of any length. Not "+",
# which starts a number of its own. A run is still only a phone when whole groups of it
# have a phone's shape, which is what keeps sizes, prices and dates apart.
_PHONE_SEPARATOR: Final = r"(?:[^\w+]|_)"

# Two ways to find runs. Most messages have no number words, and for them a run is simply
# digits and separators; the pattern starts with a character class, which lets the regex
# engine jump between candidates. The lookbehind (placed after the first character for
# that reason) keeps "SKU9161234567" from being read as a phone.
_DIGIT_RUN: Final[re.Pattern[str]] = re.compile(
    rf"[+(0-9](?<![0-9a-z].)(?:[0-9]|{_PHONE_SEPARATOR})*+"
)
# With number words ("восемь девять один ...") a run is a chain of tokens.
_SPELLED_RUN: Final[re.Pattern[str]] = re.compile(
    rf"(?:(?:\+|(?<!\w)(?:плюс|plus)(?!\w))[ \t]*)?(?<![0-9a-z])\(?"
    rf"(?:{_NUMBER_TOKEN})(?:{_PHONE_SEPARATOR}++(?:{_NUMBER_TOKEN}))*"
)
# Cheap test for number words (or a spelled plus); may also hit inside words ("просто"),
# which is checked afterwards.
_NUMBER_WORD_HINT: Final[re.Pattern[str]] = re.compile(
    rf"(?:{_NUMBER_WORD_ALTERNATION}|плюс|plus)(?!\w)"
)
_PLUS_PREFIXES: Final = ("+", "плюс", "plus")

# Bounds of every phone shape; let the search skip short runs and stop early in long ones.
_MIN_PHONE_DIGITS: Final = 10
_MAX_PHONE_DIGITS: Final = 13

# "Introduced as an article, order or tracking number": such a keyword, then only glue
# (punctuation, "№", "номер", marketplace tags, other numbers of the same list), then the
# number. Anchored at the end of the text that precedes the number.
_INTRO_KEYWORD: Final = _alternation(
    (
        r"артикул[а-я]*", r"арт\.?", r"art\.?", r"sku", r"код[ \t]+товара",
        r"заказ[а-я]{0,2}", r"order[a-z]?",
        r"трек[а-я]*", r"track[a-z]*", r"отправлени[а-я]{0,2}", r"шпи",
        r"накладн[а-я]{0,2}", r"посылк[а-я]{0,2}", r"штрих-?код[а-я]{0,2}", r"barcode",
        r"ean", r"инн",
    )
)  # fmt: skip
_INTRO_FILLER: Final = _alternation(
    (
        r"номер[а-я]{0,2}", r"no\.?", r"nr\.?", r"n", r"id", r"wb", r"вб", r"ozon", r"озон",
        r"ym", r"товара", r"вашего", r"ваш", r"моего", r"мой", r"my", r"your", r"number",
        r"[0-9]+",
    )
)  # fmt: skip
_INTRO_GLUE: Final = r"[\s:#№=,;\-]*"
_INTRODUCED: Final[re.Pattern[str]] = re.compile(
    rf"(?<!\w)(?:{_INTRO_KEYWORD})(?:{_INTRO_GLUE}(?:{_INTRO_FILLER})(?!\w))*{_INTRO_GLUE}\Z"
)
# How far back to look for the keyword; a few words are enough.
_INTRO_WINDOW: Final = 80


class _DigitGroup(NamedTuple):
    start: int
    end: int
    digits: str


def _composes(left: int, right: int) -> bool:
    """Whether word `right` continues a number whose last word was `left`.

    "сто" + "двадцать" + "три" is one group 123; "девять" + "один" are two groups 9, 1.
    """
    if left >= 100 and left % 100 == 0:
        return 1 <= right < 100
    if 20 <= left < 100 and left % 10 == 0:
        return 1 <= right <= 9
    return False


def _digit_groups(view: str, start: int, end: int, tokens: re.Pattern[str]) -> list[_DigitGroup]:
    groups: list[_DigitGroup] = []
    # A spelled number being assembled: (start, end, value so far, value of its last word).
    spelled: tuple[int, int, int, int] | None = None
    for token in tokens.finditer(view, start, end):
        text = token.group()
        if text[0].isdigit():
            if spelled is not None:
                groups.append(_DigitGroup(spelled[0], spelled[1], str(spelled[2])))
                spelled = None
            groups.append(_DigitGroup(token.start(), token.end(), text))
            continue
        value = _NUMBER_WORDS[text]
        if spelled is not None and _composes(spelled[3], value):
            spelled = (spelled[0], token.end(), spelled[2] + value, value)
        else:
            if spelled is not None:
                groups.append(_DigitGroup(spelled[0], spelled[1], str(spelled[2])))
            spelled = (token.start(), token.end(), value, value)
    if spelled is not None:
        groups.append(_DigitGroup(spelled[0], spelled[1], str(spelled[2])))
    return groups


def _has_phone_shape(digits: str, *, plus: bool, grouped: bool) -> bool:
    """Whether the digits look like a phone number (see the module docstring)."""
    count = len(digits)
    if count == 10 and digits[0] == "9":  # RU mobile without a trunk prefix
        return True
    if digits[0] == "7":  # RU / KZ: exactly 7 + ten digits
        return count == 11 and (plus or digits[1] == "9")
    if digits[0] == "8":  # RU / KZ / BY trunk prefix: 8 + ten digits
        return count == 11
    if digits.startswith(("375", "998")):  # Belarus, Uzbekistan: code + nine digits
        return count == 12 and (plus or grouped)
    return plus and 10 <= count <= _MAX_PHONE_DIGITS  # any other international number


def _is_introduced(view: str, start: int) -> bool:
    prefix = view[max(0, start - _INTRO_WINDOW) : start]
    return _INTRODUCED.search(prefix) is not None


def _phones_in_run(view: str, run: re.Match[str], tokens: re.Pattern[str]) -> Iterator[_Span]:
    groups = _digit_groups(view, run.start(), run.end(), tokens)
    first = 0
    while first < len(groups):
        plus = first == 0 and view.startswith(_PLUS_PREFIXES, run.start())
        digits = ""
        last_fit: int | None = None
        for last in range(first, len(groups)):
            digits += groups[last].digits
            if len(digits) > _MAX_PHONE_DIGITS:
                break
            if _has_phone_shape(digits, plus=plus, grouped=last > first):
                last_fit = last  # keep going: prefer the longest phone
        if last_fit is None:
            first += 1
            continue
        start = run.start() if first == 0 else groups[first].start
        if plus or not _is_introduced(view, start):
            yield start, groups[last_fit].end, "phone"
        first = last_fit + 1


def _has_number_word(view: str) -> bool:
    return any(_starts_word(view, hit.start()) for hit in _NUMBER_WORD_HINT.finditer(view))


def _find_phones(view: str) -> Iterator[_Span]:
    if _has_number_word(view):
        for run in _SPELLED_RUN.finditer(view):
            # Every digit takes at least one character: shorter runs cannot hold a phone.
            if run.end() - run.start() >= _MIN_PHONE_DIGITS:
                yield from _phones_in_run(view, run, _TOKEN)
        return
    for run in _DIGIT_RUN.finditer(view):
        # Dates, prices and sizes end here: they have fewer digits than any phone.
        if sum(map(str.isdigit, run.group())) >= _MIN_PHONE_DIGITS:
            yield from _phones_in_run(view, run, _DIGITS)


# --------------------------------------------------------------------------------------
# E-mails and links
# --------------------------------------------------------------------------------------

# "ivan@mail.ru", and "ivan@mail" without a top-level domain: the domain needs a letter,
# so "2шт@500" is not an e-mail.
_EMAIL: Final[re.Pattern[str]] = re.compile(
    r"(?<![\w.+-])[\w.+-]++@(?=[\w-]*[^\W\d_])[\w-]++(?:\.[\w-]++)*"
)

# "ivan собака mail точка ru", "ivan at gmail dot com", "ivan(at)mail.ru", "ivan @ mail . ru".
_SPELLED_AT: Final = (
    r"(?:[ \t]*@[ \t]*"
    r"|[ \t]*[(\[{<][ \t]*(?:at|собака|собачка)[ \t]*[)\]}>][ \t]*"
    r"|[ \t]+(?:at|собака|собачка)[ \t]+)"
)
_SPELLED_DOT: Final = (
    r"(?:[ \t]*\.[ \t]*"
    r"|[ \t]*[(\[{<][ \t]*(?:dot|точка)[ \t]*[)\]}>][ \t]*"
    r"|[ \t]+(?:dot|точка)[ \t]+)"
)
# Mail services: a spelled e-mail that names one needs no top-level domain ("ivan собака
# mail"); any other spelled one does, as "собака" and "at" are ordinary words.
_MAIL_SERVICES: Final = (
    "mail", "gmail", "yandex", "inbox", "rambler", "outlook", "hotmail", "icloud", "yahoo",
    "protonmail", "мейл", "майл", "гмейл", "джимейл", "яндекс", "рамблер",
)  # fmt: skip
_SPELLED_EMAIL: Final[re.Pattern[str]] = re.compile(
    rf"(?<![\w.+-])[\w.+-]++{_SPELLED_AT}"
    rf"(?:(?:[\w-]++{_SPELLED_DOT})+(?:{_TLDS})|{_alternation(_MAIL_SERVICES)})(?![\w-])"
)

_SCHEME_LINK: Final[re.Pattern[str]] = re.compile(
    r"(?<!\w)(?:(?:https?|ftp|tg|viber|whatsapp|skype)://|www\.)[^\s<>\"]+"
)
# A bare domain: "shop.ru", "t.me/shop", "vk.com/id1". The lookbehind keeps it from starting
# inside a word, an e-mail or a path, so each candidate is tried once. The first label must
# have a letter: "весом 5.kg" is a weight, not Kyrgyzstan.
_BARE_LINK: Final[re.Pattern[str]] = re.compile(
    rf"(?<![\w.@/-])(?=[\w-]*[^\W\d_])(?:[\w-]{{1,63}}\.)+(?:{_TLDS})(?![\w-])"
    rf"(?:[/?#][^\s<>\"]*)?"
)
# "shop точка ru", "shop[dot]ru", "shop(.)ru", "shop . ru". A dot with spaces needs a Latin
# name of two characters or more before it ("size m . me" is not a link).
_SPELLED_LINK: Final[re.Pattern[str]] = re.compile(
    rf"(?<![\w.@/-])(?:[a-z0-9-]++(?:[ \t]*[(\[{{<][ \t]*(?:dot|точка|\.)[ \t]*[)\]}}>][ \t]*"
    rf"|[ \t]+(?:dot|точка)[ \t]+)|[a-z0-9-]{{2,}}+(?:[ \t]+\.[ \t]*|\.[ \t]+))"
    rf"(?:{_TLDS})(?![\w-])"
)
# A sentence may end right after a link: "пишите на shop.ru." The dot is not part of it.
_TRAILING_PUNCTUATION: Final = ".,;:!?)]}»\"'"


# Whether a bare domain is possible at all: a dot right before a known TLD. Starting with
# a literal lets the regex engine jump straight to the dots.
_DOT_TLD: Final[re.Pattern[str]] = re.compile(rf"\.(?:{_TLDS})(?![\w-])")
# Whether a spaced or bracketed dot stands before a known TLD ("shop . ru", "shop[.]ru").
_SPACED_DOT_TLD: Final[re.Pattern[str]] = re.compile(rf"\.[ \t)\]}}>]*(?:{_TLDS})(?![\w-])")
_SPELLED_AT_HINTS: Final = ("@", "at", "собак")
_SPELLED_DOT_HINTS: Final = ("dot", "точка")


def _find_emails(view: str) -> Iterator[_Span]:
    # Substring checks first: they cost far less than a regex scan and usually fail.
    if "@" in view:
        for match in _EMAIL.finditer(view):
            yield match.start(), match.end(), "email"
    if any(hint in view for hint in _SPELLED_AT_HINTS):
        for match in _SPELLED_EMAIL.finditer(view):
            yield match.start(), match.end(), "email"


def _find_links(view: str) -> Iterator[_Span]:
    patterns: list[re.Pattern[str]] = []
    if "://" in view or "www." in view:
        patterns.append(_SCHEME_LINK)
    if _DOT_TLD.search(view) is not None:
        patterns.append(_BARE_LINK)
    if any(hint in view for hint in _SPELLED_DOT_HINTS) or _SPACED_DOT_TLD.search(view):
        patterns.append(_SPELLED_LINK)
    for pattern in patterns:
        for match in pattern.finditer(view):
            end = match.end()
            while end > match.start() and view[end - 1] in _TRAILING_PUNCTUATION:
                end -= 1
            yield match.start(), end, "link"


# --------------------------------------------------------------------------------------
# Handles and platform names
# --------------------------------------------------------------------------------------

# "@shop_name", also "@ shop_name". At least one letter, so "@500" and "@ 500 руб" (prices)
# are not handles.
_HANDLE: Final[re.Pattern[str]] = re.compile(
    r"(?<![\w@.])@[ \t]*+(?=[\w.]{0,31}[^\W\d_])[\w.]{2,32}"
)

# A name after a platform word: "inst: shop_name", "тг @shop", "телеграм shop_2024".
# Taken only after a ":"/"="/"@" marker or when it contains a digit or an underscore,
# so "telegram please" does not swallow the next English word.
_HANDLE_AFTER_PLATFORM: Final[re.Pattern[str]] = re.compile(
    r"[ \t]*(?:(?P<mark>[:=]|[:=\-]?[ \t]*@)[ \t]*)?"
    r"(?P<name>(?=[a-z0-9_.]*[a-z])[a-z0-9_.]{3,32})(?![\w@])"
)
_HANDLE_HINT: Final[re.Pattern[str]] = re.compile(r"[0-9_]")

# Messengers, social networks and rival marketplaces, Russian and Latin, with the slang and
# typos people use. Every alternative starts with a plain letter so that the regex engine
# can skip positions that cannot start a name; the "whole word" test at the start is done
# in code (_starts_word) because a leading lookbehind would disable that optimisation.
# Ordinary words sharing a prefix ("вкус", "тележка", "инструкция", "озонатор", "tgif")
# do not match because of the word boundaries.
# A name split in two ("теле грам", "tele-gram"): one separator at most.
_SPLIT: Final = r"[ \t._*-]?"
# Two-letter names spaced out ("в к", "t.g"); longer ones are read by _find_spaced_names.
_SPACED: Final = r"[\W_]{1,3}"
_PLATFORM_NAME_PATTERNS: Final = (
    # Telegram, with the typos: "тилеграм", "тэлеграм", "телграм", "telgram", "teligram"
    rf"т[еэи]л[еиэ]?{_SPLIT}гр[ао]мм?[а-я]{{0,4}}", r"телег(?:а|и|е|у|ой)", r"тгк?",
    rf"tel[ei]?{_SPLIT}gr[ae]mm?", r"telega", r"tg", r"tlgrm", r"тлгрм",
    rf"т{_SPACED}г", rf"t{_SPACED}g",
    # WhatsApp: "ватсап", "вотсап", "ватс ап", "вацап", "ватцап", "уатсап", "whats app"
    r"в[ао](?:тс|ц|тц|тз|з)[ \t._-]?апп?[а-я]{0,3}", r"у[ао](?:тс|ц)[ \t]?апп?[а-я]{0,3}",
    r"w(?:h?a|o)t'?s[ \t]?app?",
    # Viber: "вайбер", "вайбир", "вибер"
    r"вайб[еи]р[а-я]{0,2}", r"вибер[а-я]{0,2}", r"viber",
    # VK
    r"вк", r"вконтакт[а-я]{0,2}", r"vk", r"vkontakt[a-z]{0,2}", rf"в{_SPACED}к",
    rf"v{_SPACED}k",
    # Instagram
    rf"инст[аы]?{_SPLIT}грамм?[а-я]{{0,4}}", rf"inst[ae]?{_SPLIT}gramm?", r"insta", r"inst",
    # "инст." is also short for "институт"
    r"инст(?:а|у|ы|е|ой|(?!\.))",
    # Odnoklassniki: only the forms that name the network, not "a classmate"
    r"одноклассник(?:и|ах)", r"odnoklassniki",
    # Rival marketplaces as "buy it there" lures ("юла", a spinning top, is in
    # _AMBIGUOUS_NAMES)
    r"авито", r"avito", r"озон(?:а|е|у|ом)?", r"ozon",
    rf"яндекс{_SPLIT}маркет[а-я]{{0,2}}", rf"yandex{_SPLIT}market", r"яндекс\.маркет[а-я]{0,2}",
    r"али[ \t-]?[эе]кспресс[а-я]{0,2}", r"ali[ \t-]?express", r"youla",
    r"мегамаркет[а-я]{0,2}", r"сбермегамаркет[а-я]{0,2}", r"megamarket", r"sbermegamarket",
    r"ламод[аеуы]", r"lamoda",
    # Other messengers, video and social networks
    r"скайп[а-я]{0,2}", r"skype", r"дискорд[а-я]{0,2}", r"discord", r"icq",
    r"ф[еэ]йсбук[а-я]{0,2}", r"facebook", r"тик[ \t-]?ток[а-я]{0,2}", r"tik[ \t-]?tok",
    r"snapchat", r"сн[эеа]пчат[а-я]{0,2}", r"wechat", r"вичат[а-я]{0,2}",
    r"ютуб[а-я]{0,2}", r"ют[ь]?юб[а-я]{0,2}", r"youtube", r"твич[а-я]{0,2}", r"twitch",
    r"тв[иі]т+ер[а-я]{0,2}", r"twitter",
)  # fmt: skip
_PLATFORM_NAMES: Final = _alternation(_PLATFORM_NAME_PATTERNS)
_PLATFORM: Final[re.Pattern[str]] = re.compile(rf"(?:{_PLATFORM_NAMES})(?!\w)")

# "тг" right after an amount is the tenge sign ("5000 тг", "5 тыс. тг"), not Telegram.
_TENGE_NAMES: Final = frozenset({"тг", "tg"})
_AMOUNT_BEFORE: Final[re.Pattern[str]] = re.compile(r"(?:[0-9]|тыс\.?)[ \t]*\Z")

# Names that are ordinary words elsewhere ("макс. размер", "wi-fi signal"): flagged only
# next to "мессенджер" or in "в максе" / "в max" / "в signal" at the end of a phrase.
_AMBIGUOUS_NAMES: Final = (
    r"макс[а-я]{0,2}", r"max", r"signal", r"сигнал[а-я]{0,2}", r"юл[аеуы]",
)  # fmt: skip
_AMBIGUOUS_NAME: Final = f"(?:{'|'.join(_AMBIGUOUS_NAMES)})"
_AMBIGUOUS_HINTS: Final = ("макс", "max", "signal", "сигнал", "юл")
_PLATFORM_IN_CONTEXT: Final[re.Pattern[str]] = re.compile(
    rf"(?<!\w)(?:мессенджер[а-я]{{0,3}}|messenger)[ \t]+(?P<after>{_AMBIGUOUS_NAME})(?!\w)"
    rf"|(?<!\w)(?P<before>{_AMBIGUOUS_NAME})[ \t]+(?:мессенджер[а-я]{{0,3}}|messenger)(?!\w)"
    # "пишите в max", but not "в max режиме"
    rf"|(?<!\w)в[ \t]+(?P<in>максе|max|signal|сигнале)(?!\w)(?![ \t]*[^\W\d_])"
    # "продаю на юле": Yula the marketplace, not the toy
    rf"|(?<!\w)на[ \t]+(?P<on>юле)(?!\w)"
)


def _find_handles(view: str) -> Iterator[_Span]:
    if "@" not in view:
        return
    for match in _HANDLE.finditer(view):
        yield match.start(), match.start() + len(match.group().rstrip(".")), "handle"


def _is_platform_name(view: str, match: re.Match[str]) -> bool:
    if not _starts_word(view, match.start()):
        return False
    if match.group() in _TENGE_NAMES:
        before = view[max(0, match.start() - 8) : match.start()]
        return _AMOUNT_BEFORE.search(before) is None
    return True


def _find_platforms(view: str) -> Iterator[_Span]:
    for match in _PLATFORM.finditer(view):
        if not _is_platform_name(view, match):
            continue
        after = _HANDLE_AFTER_PLATFORM.match(view, match.end())
        if after is not None and (
            after.group("mark") is not None or _HANDLE_HINT.search(after.group("name"))
        ):
            yield match.start(), after.end(), "handle"
        else:
            yield match.start(), match.end(), "platform"
    if any(hint in view for hint in _AMBIGUOUS_HINTS):
        for match in _PLATFORM_IN_CONTEXT.finditer(view):
            name = match.lastgroup or "in"
            yield match.start(name), match.end(name), "platform"


# Names spelled out a letter at a time: "т е л е г р а м", "t.e.l.e.g.r.a.m", "в_и_б_е_р":
# three single letters or more with nothing but separators between them. The letters are
# read together, and a name of three letters or more anywhere in them counts ("пишите в т е
# л е г р а м" reads "втелеграм"). Two-letter names spaced out are patterns of their own.
_SPACED_RUN: Final = r"[^\W\d_](?:[\W_]++[^\W\d_](?![^\W_])){2,}"
_SPACED_AT_START: Final[re.Pattern[str]] = re.compile(_SPACED_RUN)
# The separator before the first letter is consumed rather than looked back at: a pattern
# that starts with a character class lets the regex engine skip to the candidates.
_SPACED_LETTERS: Final[re.Pattern[str]] = re.compile(rf"[\W_]({_SPACED_RUN})")
_PLATFORM_ANYWHERE: Final[re.Pattern[str]] = re.compile(f"(?:{_PLATFORM_NAMES})")
_LETTER: Final[re.Pattern[str]] = re.compile(r"[^\W\d_]")


def _spaced_runs(view: str) -> Iterator[tuple[int, int]]:
    first = _SPACED_AT_START.match(view)
    if first is not None:
        yield first.span()
    for run in _SPACED_LETTERS.finditer(view, 0 if first is None else first.end()):
        yield run.span(1)


def _find_spaced_names(view: str) -> Iterator[_Span]:
    for start, end in _spaced_runs(view):
        positions = [letter.start() for letter in _LETTER.finditer(view, start, end)]
        letters = "".join(view[position] for position in positions)
        for match in _PLATFORM_ANYWHERE.finditer(letters):
            if match.end() - match.start() >= 3:
                yield positions[match.start()], positions[match.end() - 1] + 1, "platform"


# --------------------------------------------------------------------------------------
# Pre-screen
# --------------------------------------------------------------------------------------

# Most messages hold nothing a detector could find, and showing that costs far less than
# running the detectors. ``_certainly_clean`` says "clean" only when the text has none of the
# triggers below; otherwise the full rules (``_find_contacts_fully``) run, unchanged. The
# triggers are built from the detectors' own data (name lists, number words, separators,
# TLDs, the fold's characters), so the two cannot drift apart; a property test compares them.
# Why the triggers are enough, detector by detector:
#
# * ``_normalise``: a character of ``_NEEDS_FOLD`` (each one still is one after lower(), or
#   changes the length; a test checks the whole class) or a Latin letter next to a Cyrillic
#   one (``_SCRIPT_MIX``) gives other views. Then the full rules run; without them the
#   detectors read a single view, which is what the pre-screen reads.
# * ``_digit_view``: a digit next to one of ``_DIGIT_LOOKALIKES`` (lowercase, before the
#   careful fold; a text that needs that fold has a trigger anyway). Without the view, the
#   phone detector reads what the pre-screen reads.
# * phones: a digit run with a phone holds ``_MIN_PHONE_DIGITS`` digits with nothing but
#   ``_PHONE_SEPARATOR`` between them (every dash and space the cheap fold changes is one
#   before the fold as well). Spelled runs (when ``_has_number_word``) count whole
#   groups: a phone of digit groups alone is such a run again, and one with a spelled group
#   (at most three digits) has two groups or more, so a number word stands 1 to
#   separators before a digit or a number word, or after a digit.
# * e-mails and links: "@" (``_EMAIL``); "://" or a word starting "www." (``_SCHEME_LINK``);
#   a dot before a known TLD (``_DOT_TLD``), also with the spaces and closing brackets
#   ``_SPELLED_DOT`` and ``_SPELLED_LINK`` allow. Every other spelled dot is a
#   ``_SPELLED_DOT_HINTS`` word after a space or a bracket, and each spelled e-mail or link
#   ends in a spelled dot and a TLD, or in a ``_MAIL_SERVICES`` word (a trigger of its own):
#   the at-words need no trigger.
# * handles: "@" (``_HANDLE``), or a platform name with a name after it.
# * platform names: a whole word from ``_PLATFORM_NAME_PATTERNS`` or ``_AMBIGUOUS_NAMES``
#   (``_PLATFORM_IN_CONTEXT`` needs the ambiguous name as a whole word too; the tenge rule
#   only drops findings).
# * spaced names: ``_find_spaced_names`` itself runs on the pre-screen's view; the cheap fold
#   keeps letters and non-letters what they are, and the space in front changes nothing.
#
# The pre-screen reads the text lowercased with "ё" as "е", but does not fold ``_DASHES`` and
# ``_SPACES`` first (that would cost a scan of its own). It reads them as the fold would:
# its phone separators and spelled-dot spaces include them, and a word after one is checked
# like a word after any punctuation. Only inside a word ("ватс ап", "tik-tok") could one
# count differently, so one between two word characters is a trigger that gets the text
# folded and scanned again.
#
# Two scans. Words are checked where they start; spaces are the commonest word boundary and
# the fastest thing to find (a literal), so words after a space get a scan of their own, and
# the text gets a space in front, which puts its first word among them. The other scan stops
# at every other character that is not a Cyrillic letter. The regex engine tries branches
# one after another, so most branches first test the character after it (which the engine
# rules out cheaply) and the rest share one look back.


def _has_top_level_bar(pattern: str) -> bool:
    """Whether `pattern` is an alternation at its top level ("a|b"): it cannot be split."""
    depth = 0
    in_class = escaped = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char in "()":
            depth += 1 if char == "(" else -1
        elif char == "|" and depth == 0:
            return True
    return False


def _by_first_letter(words: Mapping[str, tuple[str, ...]], then: str = "") -> str:
    """Word patterns, each followed by its tail, as one alternation grouped by first letter.

    `words` maps a tail to the patterns it follows. The regex engine tries an alternation a
    branch at a time, so a class of the first letters up front rules out most words in one
    step, and grouping keeps the branches few. `then` goes between that class and the
    words. Every pattern must start with a plain letter.
    """
    groups: dict[str, dict[str, list[str]]] = {}
    for tail, patterns in words.items():
        for pattern in patterns:
            first, rest = pattern[:1], pattern[1:]
            if not first.isalpha() or rest.startswith(("?", "*", "+", "{")):
                raise ValueError(f"{pattern!r} does not start with a plain letter")
            if _has_top_level_bar(pattern):
                raise ValueError(f"{pattern!r} is an alternation: list its branches")
            groups.setdefault(first, {}).setdefault(tail, []).append(f"(?:{rest})")

    # A tail is written once for the words of one first letter that it follows, not once a
    # word: a long tail after each of fifty number words made a pattern of 50 KB that took
    # a tenth of a second to compile, at every start of the server.
    def words_then_tails(tails: dict[str, list[str]]) -> str:
        return "|".join(f"(?:{'|'.join(rests)}){tail}" for tail, rests in tails.items())

    branches = "|".join(
        f"{first}(?:{words_then_tails(tails)})" for first, tails in sorted(groups.items())
    )
    return f"(?=[{''.join(sorted(groups))}]){then}(?:{branches})"


_NUMBER_WORD_AHEAD: Final = _by_first_letter({r"(?!\w)": tuple(_NUMBER_WORDS)})
_TLD_AHEAD: Final = _by_first_letter({r"(?![\w-])": _TLD_NAMES})
_CHEAPLY_FOLDED: Final = _DASHES + _SPACES
# A phone separator, before the fold or after it (every dash and space the cheap fold
# changes is one both before and after). "+" too: a superset is safe, and one character
# class costs the regex engine far less than the detector's alternation.
_ANY_SEPARATOR: Final = r"[\W_]"
_SEPARATED: Final = rf"{_ANY_SEPARATOR}++"
_WORD_TRIGGERS: Final = {
    r"(?!\w)": (*_PLATFORM_NAME_PATTERNS, *_AMBIGUOUS_NAMES, *_MAIL_SERVICES),
    rf"{_SEPARATED}(?:[0-9]|{_NUMBER_WORD_AHEAD})": tuple(_NUMBER_WORDS),
    "": (*_SPELLED_DOT_HINTS, r"www\."),
}
_WORD_AFTER_SPACE: Final[re.Pattern[str]] = re.compile(f" {_by_first_letter(_WORD_TRIGGERS)}")
_OTHER_TRIGGERS: Final[re.Pattern[str]] = re.compile(
    # Consumed, so each branch looks back at it or tests the character after it.
    "[^а-я ](?:"
    + _by_first_letter(_WORD_TRIGGERS, then=r"(?<=\W)")  # a word after punctuation
    + r"|//(?<=://)"
    + rf"|{_CYRILLIC}(?<=[a-z].)|(?<={_CYRILLIC}[a-z])"  # a Latin letter next to a Cyrillic one
    + f"|(?<=[0-9@.{_NEEDS_FOLD_CHARS}{_CHEAPLY_FOLDED}])(?:"
    + r"(?<=[0-9])(?:"
    # A digit next to a letter that stands in for one (``_digit_view``)
    + rf"(?=[{_DIGIT_LOOKALIKES}])|(?<=[{_DIGIT_LOOKALIKES}].)"
    # The first digit of a group: ten digits across separators, or a number word next.
    + rf"|(?<![0-9].)(?:(?:{_ANY_SEPARATOR}*+[0-9]){{{_MIN_PHONE_DIGITS - 1}}}"
    + rf"|[0-9]*+{_SEPARATED}{_NUMBER_WORD_AHEAD}))"
    + rf"|(?<=[^0-9])(?:(?<=@)|(?<=\.)[ \t)\]}}>{_SPACES}]*{_TLD_AHEAD}|(?<=[{_NEEDS_FOLD_CHARS}])"
    + rf"|(?<=\w[{_CHEAPLY_FOLDED}])\w)"  # a dash or space to fold, inside a word
    + "))"
)


def _trigger(view: str) -> str | None:
    """The character where the first trigger found starts, or None when there is none."""
    found = _WORD_AFTER_SPACE.search(view) or _OTHER_TRIGGERS.search(view)
    return None if found is None else found.group()[0]


def _certainly_clean(text: str) -> bool:
    """True when no detector can find anything in `text`; False means "run the full rules"."""
    lowered = text.lower()
    if len(lowered) != len(text):
        return False  # the careful fold
    view = " " + lowered.replace("ё", "е")
    trigger = _trigger(view)
    if trigger is not None and trigger in _CHEAPLY_FOLDED:
        trigger = _trigger(_fold_cheaply(view))
    if trigger is not None:
        return False
    # Single letters in a row are common in clean text ("S, M, L", "и т.д."), so instead of
    # a trigger the detector itself runs: with no trigger, the full rules read one view,
    # which has the same letters and separators as this one. Most texts have no such run
    # at all, which its two patterns say without the detector's generators (~1 µs less).
    if _SPACED_AT_START.match(view) is None and _SPACED_LETTERS.search(view) is None:
        return True
    return next(_find_spaced_names(view), None) is None


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------

_DETECTORS: Final = (
    _find_phones, _find_emails, _find_links, _find_handles, _find_platforms, _find_spaced_names,
)  # fmt: skip


def _merge(spans: list[_Span]) -> list[ContactFinding]:
    spans.sort(key=lambda span: (span[0], -span[1]))
    merged: list[ContactFinding] = []
    for start, end, kind in spans:
        if merged and start < merged[-1].end:
            last = merged[-1]
            best = min(last.kind, kind, key=_KIND_PRIORITY.__getitem__)
            merged[-1] = ContactFinding(last.start, max(last.end, end), best)
        else:
            merged.append(ContactFinding(start, end, kind))
    return merged


def find_contacts(text: str) -> list[ContactFinding]:
    """All forbidden contact spans in `text`, sorted by start, non-overlapping (merge overlaps)."""
    if not text or _certainly_clean(text):
        return []
    return _find_contacts_fully(text)


def _find_contacts_fully(text: str) -> list[ContactFinding]:
    """`find_contacts` without the pre-screen: every detector on every view."""
    if not text:
        return []
    normalised = _normalise(text)
    found: list[_Span] = []
    for view in normalised.views:
        for detect in _DETECTORS:
            found.extend(detect(view))
    if normalised.digits is not None:
        found.extend(_find_phones(normalised.digits))
    spans = [
        (*normalised.to_original(start, end), kind) for start, end, kind in found if end > start
    ]
    return _merge(spans)


# --------------------------------------------------------------------------------------
# Numbers split across messages
# --------------------------------------------------------------------------------------

# "8916" in one message and "1234567" in the next: each alone has no phone's shape. A chat
# keeps, for each side, the end of that side's last messages while they end in a number
# (``number_tail``, folded by evolve), and a new message of the side is read after it
# (``continued_contacts``). A message that ends in words ends the tail: a phone cannot run
# across words. The tail keeps enough text before the number for the keyword test
# (``_INTRO_WINDOW``) and for a number written over three or four messages.
_TAIL_LENGTH: Final = 160
# What a number may end in: a digit, a plus, or a number word (or a spelled plus) that is
# the view's last word; then only separators.
_NUMBER_ENDINGS: Final = frozenset((*_NUMBER_WORDS, "плюс", "plus"))
# Between two messages of a tail: a separator, so digits of two messages never fuse into one
# group ("12" + "34" stays two groups, as typed).
_MESSAGE_BREAK: Final = "\n"


def _ends_in_number(text: str) -> bool:
    # Most texts that end in a number end in a plain digit: no fold changes one, so the
    # answer needs no view (this runs for every message the chat's state takes in).
    if text[-1:] in _PLAIN_NUMBER_ENDS:
        return True
    window = text[-_INTRO_WINDOW:]
    if _NEEDS_FOLD.search(window) is None:
        # What `_normalise` would make of the window, without making it. The answer reads
        # only the view's last word and the separators after it. Without a character of
        # the careful fold, the view is the window lowercased and cheaply folded, which
        # keeps every character a word character or a separator as it was, so the last
        # word is found in the window itself. The digit view turns letters into digits
        # only in a word that has a digit and never changes a digit, and the script views
        # are extra views. (Texts with a number inside and words at the end, «Размер 42
        # подошёл, спасибо.», took the whole `_normalise`: ~11 µs a message.)
        word = _last_word(window)
        if word is None or word[-1:] in _DIGIT_CHARS or _ANY_DIGIT.search(word) is None:
            return _ends_a_number(None if word is None else word.lower().replace("ё", "е"))
    normalised = _normalise(window)
    return _view_ends_in_number(normalised.digits or normalised.views[0])


_PLAIN_NUMBER_ENDS: Final = frozenset("0123456789+")
_ANY_DIGIT: Final[re.Pattern[str]] = re.compile("[0-9]")


def _view_ends_in_number(view: str) -> bool:
    """Whether `view` ends in a digit, a plus or a number word, then only separators
    (``[\\W_]``); read from the end, not searched for from the start."""
    return _ends_a_number(_last_word(view))


def _ends_a_number(word: str | None) -> bool:
    """Whether a view whose last word is `word` (see `_last_word`) ends in a number."""
    return word is None or word[-1:] in _DIGIT_CHARS or word in _NUMBER_ENDINGS


_DIGIT_CHARS: Final = frozenset("0123456789")


def _last_word(view: str) -> str | None:
    """`view`'s last word (word characters) before the separators it ends in, "" for none;
    None when a plus stands among those separators."""
    end = len(view)
    # "_" separates here, though the word test below counts it as a word character.
    while end and (view[end - 1] == "_" or not _is_word_char(view[end - 1])):
        if view[end - 1] == "+":
            return None
        end -= 1
    start = end
    while start and _is_word_char(view[start - 1]):
        start -= 1
    return view[start:end]


def _is_word_char(char: str) -> bool:
    """The regex ``\\w`` for one character."""
    return char.isalnum() or char == "_"


def number_tail(tail: str, text: str) -> str:
    """A side's tail after it wrote `text` (as stored, trimmed), given its tail before."""
    if not text:
        return tail  # files alone: nothing between the numbers before and after
    if not _ends_in_number(text):
        return ""
    joined = f"{tail}{_MESSAGE_BREAK}{text}" if tail else text
    return joined[-_TAIL_LENGTH:]


def continued_contacts(tail: str, text: str) -> list[ContactFinding]:
    """Contacts that `text` completes when read after `tail`, as spans of `text`.

    Only findings that reach into `text` from the tail count, clipped to `text`: what
    lies in the tail alone was accepted with its own message, and what lies in `text`
    alone is ``find_contacts(text)``'s.
    """
    if not tail or not text or _starts_a_new_thought(text):
        return []
    return _continued_contacts_fully(tail, text)


def _continued_contacts_fully(tail: str, text: str) -> list[ContactFinding]:
    """`continued_contacts` without its pre-screen: the rules over the tail and the text."""
    offset = len(tail) + len(_MESSAGE_BREAK)
    return [
        ContactFinding(0, finding.end - offset, finding.kind)
        for finding in find_contacts(tail + _MESSAGE_BREAK + text)
        if finding.start < offset < finding.end
    ]


# A text that starts with a word of two plain letters or more, of one script, that is no
# number word: "Здравствуйте", "Спасибо!", "ok". The pattern reads the lowercased start.
_PLAIN_FIRST_WORD: Final[re.Pattern[str]] = re.compile(r"(?:[a-z]{2,}|[а-яё]{2,})(?![^\W_])")
# Longer than any word the test below needs to read.
_FIRST_WORD_WINDOW: Final = 24


def _starts_a_new_thought(text: str) -> bool:
    """True when no contact can reach into `text` from its side's tail, so that reading it
    after the tail (a second pre-screen over both, ~12 µs for a tail and a text of the
    usual length) is not needed; False means "read it after the tail".

    Why a first word as above stops everything at the break (the tail's end, a newline, and
    `text[0]`, which a finding that reaches into `text` holds):
    * phones are runs of digits, number words and separators: a plain word that is no
      number word ends the run; the digit view reads letters as digits only in a word that
      has a digit, the script views only words of both scripts, and the careful fold leaves
      plain letters as they are (none is in ``CONFUSABLES``);
    * spaced names are single letters, and this word has two;
    * e-mails, links, handles and a handle after a platform allow no newline inside;
    * platform names hold no digit, plus or number word, which the tail ends in.
    A property test holds this against the full rules.
    """
    start = text[:_FIRST_WORD_WINDOW].lower()
    found = _PLAIN_FIRST_WORD.match(start)
    if found is None or found.end() == len(start) < len(text):
        return False  # not a plain word, or one too long to read here: the full rules
    return found.group().replace("ё", "е") not in _NUMBER_ENDINGS
