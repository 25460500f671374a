"""What an order's price may be: ISO 4217 currency codes and the bounds of an amount.

The codes are the currencies of ISO 4217's list one in force, kept here so that no check
needs the network. Left out on purpose: fund codes (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI,
UYW), precious metals, bond-market units, the SDR, and the test and "no currency" codes
(XAG, XAU, XBA-XBD, XDR, XPD, XPT, XSU, XTS, XUA, XXX): nobody pays for goods in them.
"""

from __future__ import annotations

from typing import Final

# fmt: off
ISO_4217: Final[frozenset[str]] = frozenset((
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD",
    "BDT", "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN",
    "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF",
    "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
    "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR",
    "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW",
    "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA",
    "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN",
    "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD",
    "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT",
    "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VED",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW",
    "ZWG",
))
# fmt: on

# A price in minor units: at least one (a free order has nothing to refund, and a negative
# one would make a refund debit the buyer), at most 10^12 (ten billion roubles). 2^63 / 10^12
# is over nine million, so no balance of any number of such refunds a user could plausibly
# collect comes near the 64-bit integers the stores sum in.
MIN_PRICE: Final = 1
MAX_PRICE: Final = 10**12
