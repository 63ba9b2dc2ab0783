"""One small recognizer per identifier shape; the analyzer runs them all and resolves overlaps."""

from medfusion.privacy.recognizers.address import AddressRecognizer
from medfusion.privacy.recognizers.base import Context, Recognizer
from medfusion.privacy.recognizers.by_context import (
    CertificateRecognizer,
    HospitalIdRecognizer,
    InsuranceRecognizer,
    SocialIdRecognizer,
)
from medfusion.privacy.recognizers.cards import BankCardRecognizer
from medfusion.privacy.recognizers.cueless_names import CuelessNameRecognizer
from medfusion.privacy.recognizers.dates import AgeRecognizer, DateRecognizer
from medfusion.privacy.recognizers.id_card import IdCardRecognizer
from medfusion.privacy.recognizers.names import NameRecognizer
from medfusion.privacy.recognizers.network import EmailRecognizer, IpRecognizer, UrlRecognizer
from medfusion.privacy.recognizers.phone import PhoneRecognizer
from medfusion.privacy.recognizers.plate import PlateRecognizer


def default_recognizers() -> list[Recognizer]:
    return [
        IdCardRecognizer(),
        BankCardRecognizer(),
        PhoneRecognizer(),
        EmailRecognizer(),
        UrlRecognizer(),
        IpRecognizer(),
        HospitalIdRecognizer(),
        InsuranceRecognizer(),
        CertificateRecognizer(),
        SocialIdRecognizer(),
        PlateRecognizer(),
        DateRecognizer(),
        AgeRecognizer(),
        AddressRecognizer(),
        NameRecognizer(),
        CuelessNameRecognizer(),
    ]


__all__ = ["Context", "Recognizer", "default_recognizers"]
