"""ISO 4217 active currencies and their minor-unit exponents (list one, 2025 edition).

Funds, precious metals, testing and no-currency codes (XAU, XDR, XTS, XXX, ...) are excluded:
nobody is billed in them. The exponent says how many decimals a minor unit has: JPY 0, USD 2, KWD 3.
"""

from __future__ import annotations

_ZERO_DECIMAL = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_THREE_DECIMAL = "BHD IQD JOD KWD LYD OMR TND"
_TWO_DECIMAL = """
AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF
CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD
HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK
MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD
RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS
UAH USD UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG
"""

EXPONENTS: dict[str, int] = {
    **dict.fromkeys(_TWO_DECIMAL.split(), 2),
    **dict.fromkeys(_ZERO_DECIMAL.split(), 0),
    **dict.fromkeys(_THREE_DECIMAL.split(), 3),
}


class UnknownCurrencyError(ValueError):
    """Not an active ISO 4217 currency code."""


def normalize_currency(code: str) -> str:
    """The upper-case ISO 4217 code; ``usd`` is accepted as ``USD``."""
    upper = code.upper()
    if upper not in EXPONENTS:
        raise UnknownCurrencyError(f"{code!r} is not an active ISO 4217 currency code")
    return upper


def exponent(code: str) -> int:
    return EXPONENTS[normalize_currency(code)]
