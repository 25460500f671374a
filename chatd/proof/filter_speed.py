"""How long the contacts filter takes per message: µs per call of ``find_contacts``.

    python -m chatd.proof.filter_speed [--repeat 7] [--min-time 0.05]

Ordinary clean messages of about 20, 100 and 1000 characters (Russian chat text, none of
which holds anything the filter looks for), two in Latin script, then messages that each
set off one detector, and ordinary messages written after a message of the same side that
ended in a number (the chat reads them a second time, after that number: a phone may be split
over messages). Every figure is the median over ``--repeat`` timeit runs of the time
per call; each run makes as many calls as take about ``--min-time`` seconds. The "full
rules" column is the filter without its pre-screen (``_find_contacts_fully``), when the
module has one (for the messages after a number: without the pre-screen of that second
reading, ``_continued_contacts_fully``); "found" is what the filter reports, a check that
each row is what it claims to be (the program exits with 1 when a clean message is
flagged).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

from chatd.domain import moderation
from chatd.domain.moderation import (
    ContactFinding,
    continued_contacts,
    find_contacts,
    number_tail,
)

# Ordinary messages, grouped by length: buyers and shops talking about goods and orders.
SHORT = (
    "Спасибо, жду заказ!",
    "Размер 42 подошёл.",
    "Добрый день! Да, есть",
    "Хорошо, буду ждать.",
)
MEDIUM = (
    "Здравствуйте! Подскажите, пожалуйста, когда придёт заказ? Размер 42 подошёл, спасибо.",
    "Товар пришёл с браком, шов разошёлся, хочу вернуть. Фото дефекта приложила к сообщению.",
    "Цена 2 990 ₽, по акции 2 490 ₽. Размеры: 42, 44, 46 (S, M, L) — все в наличии на складе.",
    "Добрый день, спасибо за обращение! Отправка происходит в течение двух рабочих дней.",
    "Ткань оказалась заметно тоньше, чем на фотографиях, а цвет намного темнее, чем в описании.",
)
_SENTENCES = (
    "Здравствуйте, подскажите, пожалуйста, модель маломерит или соответствует размерной сетке?",
    "Заказ уже неделю в пути, можно узнать, где он сейчас?",
    "Ткань оказалась заметно тоньше, чем на фотографиях, а швы в нескольких местах расходятся.",
    "Молния заедает с первого дня, застегнуть получается не с первого раза.",
    "Посылка пришла в пункт выдачи 17.08, но коробка была помята, а внутри царапина.",
    "Размер не подошёл: в плечах узко, а по длине наоборот великовато.",
    "Мы проверили: заказ передан в доставку, ожидайте его в пункте выдачи в ближайшие дни.",
    "Изделие можно стирать в деликатном режиме при 30 градусах, отжим не больше 600 оборотов.",
    "Возврат можно оформить прямо в этом чате, кнопка «Вернуть товар» под заказом.",
    "Цена 10 990 ₽, скидка 15% — итого 9 341,50 ₽; доставка бесплатная от 3 000 ₽.",
    "Приносим извинения за неудобства, мы передали информацию на склад и проверим всю партию.",
    "Спасибо, что сообщили, это важно для нас. Хорошего дня!",
)


def _long(offset: int, length: int = 1000) -> str:
    """About `length` characters of whole sentences, starting from sentence `offset`."""
    parts: list[str] = []
    size = 0
    index = offset
    while size < length - 40:
        sentence = _SENTENCES[index % len(_SENTENCES)]
        parts.append(sentence)
        size += len(sentence) + 1
        index += 1
    return " ".join(parts)


LONG = (_long(0), _long(4), _long(8))

# Latin script: every letter is a character the pre-screen has to look at.
_ENGLISH = (
    "Hello, the jacket arrived yesterday but the zipper is broken. Could you send a "
    "replacement, please? I would rather not return the whole order. "
)
LATIN = (
    "Hi! Is size M available in black? Thanks, I will wait for the order to arrive next week.",
    (_ENGLISH * 7)[:1000],
)
CLEAN: dict[str, tuple[str, ...]] = {
    "clean ~20": SHORT,
    "clean ~100": MEDIUM,
    "clean ~1000": LONG,
    "latin ~100": LATIN[:1],
    "latin ~1000": LATIN[1:],
}

# Messages that set off one detector each (and so run the full rules).
TRIGGERS: tuple[tuple[str, str], ...] = (
    ("phone", "Звоните +7 (916) 123-45-67, отвечу сразу"),
    ("phone, spelled", "восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь"),
    ("article (not a phone)", "Артикул WB: 170589710, заказ № 9161234567"),
    ("e-mail", "Пишите на ivan.petrov@mail.ru, пришлю фото"),
    ("e-mail, spelled", "ivan собака mail точка ru"),
    ("link", "Смотрите https://shop.ru/item?id=1 там дешевле"),
    ("bare domain", "Заходите на shop.ru, там всё есть"),
    ("handle", "мой ник @shop_name, пишите"),
    ("platform", "Пишите в телеграм, там быстрее"),
    ("platform, in context", "напишите в максе, отвечу"),
    ("mixed scripts", "пишите в тeлеграм"),
    ("unusual characters", "те\u0301леграм и ｓｈｏｐ．ｒｕ"),
    ("phone, any separators", "звоните 8/916/123_45_67"),
    ("phone, letters as digits", "8 9I6 I23 45 67"),
    ("look-alikes (Greek)", "пишите в τελεγραμ"),
    ("spaced out", "пишите в т е л е г р а м"),
    ("spaced dot", "заходите на shop . ru"),
)


# Ordinary messages after the same side's message that ended in a number (what the side's
# tail keeps); the first pair is the load generator's own text after itself.
_BENCH_TEXT = "Здравствуйте! Подскажите, пожалуйста, когда будет отправка заказа? #{}"
AFTER_NUMBER: tuple[tuple[str, str, str], ...] = (
    ("bench text", _BENCH_TEXT.format(41), _BENCH_TEXT.format(42)),
    ("after an order", "Мой заказ № 170589710", MEDIUM[0]),
    ("after a price", "Цена 2 990", SHORT[0]),
    ("after a size", "Размер 42", MEDIUM[1]),
)


class Row(NamedTuple):
    group: str  # a key of CLEAN, "trigger" or "after number"
    name: str
    chars: int
    screened: float  # µs per call of find_contacts
    full: float | None  # µs per call of the full rules, when the module has them apart
    found: str  # the kinds find_contacts reports, "-" for none


def _per_call_us(call: Callable[[], object], repeat: int, min_time: float) -> float:
    timer = timeit.Timer(call)
    number = 1
    while (elapsed := timer.timeit(number)) < 0.01:
        number *= 10
    number = max(1, round(number * min_time / elapsed))
    return statistics.median(timer.repeat(repeat, number)) / number * 1e6


def _found(findings: Sequence[ContactFinding]) -> str:
    return ",".join(sorted({finding.kind for finding in findings})) or "-"


def _cases() -> list[tuple[str, str, str]]:
    cases: list[tuple[str, str, str]] = []
    for group, texts in CLEAN.items():
        cases.extend((group, f"clean {index + 1}", text) for index, text in enumerate(texts))
    cases.extend(("trigger", name, text) for name, text in TRIGGERS)
    return cases


def _read_after(tail: str, text: str) -> list[ContactFinding]:
    """What a chat checks a message with when its side's last one ended in a number."""
    return find_contacts(text) or continued_contacts(tail, text)


def _read_after_fully(tail: str, text: str) -> list[ContactFinding]:
    return find_contacts(text) or moderation._continued_contacts_fully(tail, text)


def measure(repeat: int, min_time: float) -> list[Row]:
    full: Callable[[str], list[ContactFinding]] | None = getattr(
        moderation, "_find_contacts_fully", None
    )
    rows: list[Row] = []
    for group, name, text in _cases():
        screened = _per_call_us(partial(find_contacts, text), repeat, min_time)
        unscreened = None
        if full is not None:
            unscreened = _per_call_us(partial(full, text), repeat, min_time)
        rows.append(Row(group, name, len(text), screened, unscreened, _found(find_contacts(text))))
    for name, before, text in AFTER_NUMBER:
        tail = number_tail("", before)
        screened = _per_call_us(partial(_read_after, tail, text), repeat, min_time)
        unscreened = _per_call_us(partial(_read_after_fully, tail, text), repeat, min_time)
        found = _found(_read_after(tail, text))
        rows.append(Row("after number", name, len(text), screened, unscreened, found))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chatd.proof.filter_speed",
        description="µs per call of the contacts filter, clean messages and triggers",
    )
    parser.add_argument("--repeat", type=int, default=7, help="timeit runs per figure")
    parser.add_argument("--min-time", type=float, default=0.05, help="seconds per run")
    args = parser.parse_args(argv)

    rows = measure(args.repeat, args.min_time)
    print(f"{'group':<12} {'message':<22} {'chars':>5} {'µs/call':>8} {'full rules':>10}  found")
    for row in rows:
        full = "" if row.full is None else f"{row.full:.2f}"
        print(
            f"{row.group:<12} {row.name:<22} {row.chars:>5} {row.screened:8.2f} {full:>10}"
            f"  {row.found}"
        )
    print()
    for group in (*CLEAN, "after number"):
        figures = [row.screened for row in rows if row.group == group]
        print(f"{group + ':':<13} median {statistics.median(figures):7.2f} µs/call")
    clean = (*CLEAN, "after number")
    wrong = [f"{row.group} {row.name}" for row in rows if row.group in clean and row.found != "-"]
    if wrong:
        print("flagged, so not clean after all: " + ", ".join(wrong), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
