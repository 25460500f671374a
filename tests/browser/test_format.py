"""format.js in the browser: money as on the portal, dates and times in Moscow time, and the
contacts filter's code-point spans turned into JavaScript string offsets."""

from __future__ import annotations

from typing import Any

from tests.e2e.harness import ServerProcess

CASES = """
async () => {
  const f = await import('/format.js');
  return {
    rubCard: f.formatPrice({ value: 118600, currency: 'RUB' }),
    rubDialog: f.formatAmount({ value: 118600, currency: 'RUB' }),
    bynCard: f.formatPrice({ value: 2753, currency: 'BYN' }),
    bynDialog: f.formatAmount({ value: 2753, currency: 'BYN' }),
    big: f.formatPrice({ value: 123456700, currency: 'RUB' }),
    kopecks: f.formatAmount({ value: 100050, currency: 'RUB' }),
    yen: f.formatPrice({ value: 1500, currency: 'JPY' }),
    day: f.formatDay('2023-03-04T07:01:00Z'),
    lateDay: f.formatDay('2023-03-04T22:30:00Z'),
    time: f.formatTime('2023-08-18T14:03:00Z'),
    short: f.formatShortDate('2023-03-04T07:01:00Z'),
    key: f.dayKey('2023-03-04T22:30:00Z'),
    spans: f.codePointSpans('😀 +7 999 123-45-67', [[2, 18]]),
  };
}
"""


def test_money_dates_and_spans(browser: Any, server: ServerProcess) -> None:
    context = browser.new_context(timezone_id="UTC")
    try:
        page = context.new_page()
        page.goto(server.http + "/format.js")
        got = page.evaluate(CASES)
    finally:
        context.close()
    assert got == {
        "rubCard": "1 186 руб",
        "rubDialog": "1186 Р",
        "bynCard": "27,53 BYN",
        "bynDialog": "27,53 BYN",
        "big": "1 234 567 руб",
        "kopecks": "1000,50 Р",
        "yen": "1 500 JPY",
        "day": "4 марта 2023 г.",
        "lateDay": "5 марта 2023 г.",
        "time": "17:03",
        "short": "04.03.2023",
        "key": "2023-03-05",
        "spans": [[3, 19]],
    }
