"""A synthetic company: clients with Lithuanian names and a year of sales documents.

Everything is drawn from seeded random generators, so the same scale gives the
same company on every run and on both databases. Documents are generated one
month at a time, so the full year never has to sit in memory.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from anyascii import anyascii

from services.periods import Period

YEAR = 2026
# The month imported from i.SAF, generated and sent: about 40% of the clients.
TARGET_MONTH = Period(YEAR, 12)
# A month in which every client has documents, to show that memory stays flat.
FULL_MONTH = Period(YEAR, 11)

FULL_CLIENTS = 10_000
FULL_DOCUMENTS = 1_000_000
ACTIVE_SHARE = 0.4
# Clients that buy every month and get 100 to 250 documents each.
LARGE_SHARE = 0.03
LARGE_DOCUMENTS = (100, 250)

CENT = Decimal("0.01")
VAT_RATES = (Decimal("21"), Decimal("9"), Decimal("5"))
TAX_CODES = {Decimal("21"): "PVM1", Decimal("9"): "PVM2", Decimal("5"): "PVM3"}

FORMS = ("UAB", "UAB", "UAB", "MB", "IĮ", "AB", "ŽŪB", "VšĮ")
ADJECTIVES = (
    "Šiaurės",
    "Žaliųjų",
    "Ąžuolų",
    "Pietų",
    "Baltijos",
    "Nemuno",
    "Dzūkų",
    "Žemaičių",
    "Aukštaičių",
    "Suvalkų",
    "Ežerų",
    "Vėjų",
    "Šviesių",
    "Čiurlionio",
    "Gintarinės",
    "Rūtų",
    "Lūšių",
    "Vilkų",
    "Įlankos",
    "Kęstučio",
)
NOUNS = (
    "prekyba",
    "statyba",
    "logistika",
    "medienos apdirbimas",
    "žuvininkystė",
    "įrangos nuoma",
    "ūkininkų kooperatyvas",
    "čiužinių gamyba",
    "šildymo sistemos",
    "kepyklėlė",
    "spaustuvė",
    "vaistinė",
    "dažų parduotuvė",
    "automobilių servisas",
    "grūdų sandėliai",
    "elektros darbai",
    "siuvykla",
    "ąsočių dirbtuvės",
    "kelionių agentūra",
    "buhalterinė apskaita",
)
STREETS = (
    "Gedimino pr.",
    "Laisvės al.",
    "Žalgirio g.",
    "Šventaragio g.",
    "Ąžuolyno g.",
    "Vytauto g.",
    "Kęstučio g.",
    "Sėlių g.",
    "Ūkininkų g.",
    "Čiurlionio g.",
)
CITIES = (
    ("Vilnius", "01103"),
    ("Kaunas", "44280"),
    ("Klaipėda", "91247"),
    ("Šiauliai", "76285"),
    ("Panevėžys", "35173"),
    ("Marijampolė", "68300"),
    ("Mažeikiai", "89225"),
    ("Utena", "28240"),
    ("Kėdainiai", "57260"),
    ("Tauragė", "72254"),
    ("Ukmergė", "20116"),
    ("Druskininkai", "66120"),
)
FOREIGN = (("LV", "Rīga", "SIA"), ("EE", "Tallinn", "OÜ"), ("PL", "Białystok", "Sp."))


@dataclass(frozen=True)
class SyntheticClient:
    id: int
    code: str
    name: str
    language: str
    address: str
    registration_code: str
    vat_code: str
    country: str
    emails: tuple[str, ...]
    excluded: bool
    large: bool


@dataclass(frozen=True)
class SyntheticLine:
    vat_rate: Decimal
    tax_code: str
    net: Decimal
    vat: Decimal


@dataclass(frozen=True)
class SyntheticDocument:
    id: int
    number: str
    client_id: int
    date: date
    source_type: str
    type: str
    status: str
    net: Decimal
    vat: Decimal
    gross: Decimal
    lines: tuple[SyntheticLine, ...]


@dataclass(frozen=True)
class Company:
    """The sizes of one synthetic company at a scale."""

    scale: float
    seed: int = 2026

    @property
    def client_count(self) -> int:
        return max(10, round(FULL_CLIENTS * self.scale))

    @property
    def documents_per_month(self) -> int:
        return max(20, round(FULL_DOCUMENTS * self.scale / 12))

    def clients(self) -> list[SyntheticClient]:
        generator = random.Random(self.seed)
        return [_client(generator, index) for index in range(1, self.client_count + 1)]

    def documents(
        self, clients: list[SyntheticClient], period: Period, first_id: int
    ) -> Iterator[SyntheticDocument]:
        """Yield the month's documents, numbered from `first_id`, grouped by client."""
        generator = random.Random(f"{self.seed}-{period}")
        counts = self.document_counts(clients, period, generator)
        document_id = first_id
        for client_id, count in counts.items():
            for sequence in range(count):
                yield make_document(generator, document_id, client_id, period, sequence)
                document_id += 1

    def document_counts(
        self,
        clients: list[SyntheticClient],
        period: Period,
        generator: random.Random,
    ) -> dict[int, int]:
        """Choose the month's active clients and how many documents each gets."""
        large = [client.id for client in clients if client.large]
        others = [client.id for client in clients if not client.large]
        if period == FULL_MONTH:
            active_others = others
        else:
            target = round(len(clients) * ACTIVE_SHARE) - len(large)
            active_others = generator.sample(others, max(0, target))

        counts = {client_id: generator.randint(*LARGE_DOCUMENTS) for client_id in large}
        left = max(len(active_others), self.documents_per_month - sum(counts.values()))
        mean = left / max(1, len(active_others))
        top = max(1, round(2 * mean - 1))
        for client_id in active_others:
            counts[client_id] = generator.randint(1, top)
        return dict(sorted(counts.items()))


def _client(generator: random.Random, index: int) -> SyntheticClient:
    code = f"K{index:05d}"
    foreign = generator.random() < 0.08
    if foreign:
        country, city, form = generator.choice(FOREIGN)
        name = f"{generator.choice(ADJECTIVES)} {generator.choice(NOUNS)} {form}"
        address = f"{generator.randint(1, 90)} Brīvības iela, {city}"
        language = "en"
    else:
        country, language = "LT", "lt"
        form = generator.choice(FORMS)
        words = f"{generator.choice(ADJECTIVES)} {generator.choice(NOUNS)}"
        if generator.random() < 0.05:
            words += " ir partneriai — filialas Nr. " + str(generator.randint(1, 9))
        name = f"{form} „{words}“"
        city, postcode = generator.choice(CITIES)
        street = generator.choice(STREETS)
        address = f"{street} {generator.randint(1, 120)}, LT-{postcode} {city}"

    registration = str(generator.randint(100_000_000, 399_999_999))
    vat_code = f"{country}{generator.randint(10**8, 10**9 - 1)}"
    if generator.random() < 0.1:
        vat_code = ""
    return SyntheticClient(
        id=index,
        code=code,
        name=name,
        language=language,
        address=address,
        registration_code=registration,
        vat_code=vat_code,
        country=country,
        emails=_emails(generator, code, name),
        excluded=generator.random() < 0.005,
        large=generator.random() < LARGE_SHARE,
    )


def _emails(generator: random.Random, code: str, name: str) -> tuple[str, ...]:
    roll = generator.random()
    if roll < 0.03:
        return ()
    slug = "".join(c for c in anyascii(name).lower() if c.isalnum())[:24]
    domain = f"{slug}-{code.lower()}.lt"
    if roll < 0.88:
        return (f"buhalterija@{domain}",)
    return (f"buhalterija@{domain}", f"Direktorius@{domain.upper()}")


def make_document(
    generator: random.Random,
    document_id: int,
    client_id: int,
    period: Period,
    sequence: int,
) -> SyntheticDocument:
    roll = generator.random()
    if roll < 0.05:
        source_type, kind, sign = "KS", "credit_note", -1
    elif roll < 0.08:
        source_type, kind, sign = "DS", "debit_note", 1
    else:
        source_type, kind, sign = "SF", "invoice", 1

    lines = [_line(generator, VAT_RATES[0], sign)]
    if generator.random() < 0.15:
        lines.append(_line(generator, generator.choice(VAT_RATES[1:]), sign))
    net = sum((line.net for line in lines), Decimal("0.00"))
    vat = sum((line.vat for line in lines), Decimal("0.00"))

    day = date(period.year, period.month, generator.randint(1, 28))
    number = (
        f"{source_type}-{period.year % 100:02d}{period.month:02d}-{document_id:07d}"
    )
    return SyntheticDocument(
        id=document_id,
        number=number,
        client_id=client_id,
        date=day,
        source_type=source_type,
        type=kind,
        status="posted",
        net=net,
        vat=vat,
        gross=net + vat,
        lines=tuple(lines),
    )


def _line(generator: random.Random, rate: Decimal, sign: int) -> SyntheticLine:
    net = Decimal(generator.randint(500, 500_000)).scaleb(-2) * sign
    vat = (net * rate / 100).quantize(CENT)
    return SyntheticLine(rate, TAX_CODES[rate], net, vat)
