"""A generated PDF with one distinctive fact per page (fpdf2), for the document benchmark and
the tests: "In Harrowgate the ferryman Ottilie Brandt keeps a cobalt lantern marked 4417."

Every page also carries filler sentences drawn from a small common pool, so a search has to
tell the right page from 299 others that share most of its words. A fact's question names its
town, trade, colour and object, never the name or the number it asks for.
"""

from __future__ import annotations

import itertools
import random
import textwrap
from dataclasses import dataclass

from fpdf import FPDF

TOWNS = """Harrowgate Fenwick Oakhollow Brightwater Calder Dunmore Elmstead Galloway Hexham
Ivybridge Kestrel Lowmoor Marlow Northwick Pemberton Quarry Redcliffe Stonebury Thornfield
Umber Valemont Westmarch Yarrow Zennor Ashby Birchley Corrin Dovecote Emberly Foxley""".split()
TRADES = """ferryman baker cartographer clockmaker beekeeper glassblower harbourmaster
librarian locksmith miller potter saddler shepherd tailor tanner weaver chandler cooper
falconer vintner""".split()
COLOURS = "cobalt crimson amber ivory jade scarlet ochre violet silver teal umber saffron".split()
OBJECTS = """lantern compass ledger kettle telescope violin anchor bell clock map satchel
spindle chest mirror quill barometer hourglass sextant teapot drum harp lute key loom
globe""".split()
FIRST = """Ottilie Bram Cosima Dorian Elspeth Fenn Greer Hollis Ines Jory Keturah Lorcan Maeve
Nils Orla Piers Quilla Rafe Saoirse Tobin Una Vesper Wren Xanthe Yorick Zelda""".split()
LAST = """Brandt Calloway Drummond Eastwood Fairweather Grimsby Holloway Ingram Jessop Kettering
Lockhart Merriweather Norwood Oakes Pennington Quayle Ravensworth Sterling Thackeray Upton
Vance Whitlock Yardley Zeller""".split()
FILLER = [
    "The committee met again to review the minutes of the previous session.",
    "Weather records for the season were collected and filed with the archive.",
    "Several members asked for the report to be circulated before the next meeting.",
    "The annual accounts show that expenses were close to the budget set in spring.",
    "A number of letters were received and answered by the secretary.",
    "Repairs to the old road were discussed but no decision was reached.",
    "The market was busy and trade was steady throughout the week.",
    "Visitors from the neighbouring district attended the evening lecture.",
    "The school reported good attendance and a new teacher was welcomed.",
    "It was agreed that the matter would be raised again at a later date.",
    "The river was high after the rains and the lower fields were flooded.",
    "Thanks were given to everyone who helped with the summer fair.",
]


@dataclass(frozen=True, slots=True)
class Fact:
    page: int  # 1-based
    town: str
    trade: str
    colour: str
    thing: str
    name: str
    number: int

    @property
    def sentence(self) -> str:
        return (
            f"In {self.town} the {self.trade} {self.name} keeps a {self.colour} {self.thing} "
            f"marked {self.number}."
        )

    @property
    def question(self) -> str:
        return f"Who is the {self.trade} in {self.town} with the {self.colour} {self.thing}?"


def facts(pages: int, seed: int = 7) -> list[Fact]:
    """One fact per page; no two share town, trade, colour and object all at once."""
    rng = random.Random(seed)
    combos = list(itertools.product(TOWNS, TRADES, COLOURS, OBJECTS))
    chosen = rng.sample(combos, pages)
    names = rng.sample(list(itertools.product(FIRST, LAST)), pages)
    return [
        Fact(i + 1, town, trade, colour, thing, f"{first} {last}", rng.randint(1000, 9999))
        for i, ((town, trade, colour, thing), (first, last)) in enumerate(
            zip(chosen, names, strict=True)
        )
    ]


def make_pdf(pages: int, seed: int = 7, *, filler: int = 8) -> tuple[bytes, list[Fact]]:
    """A PDF of ``pages`` pages: each a heading, ``filler`` common sentences and its fact in
    the middle of them."""
    rng = random.Random(seed + 1)
    made = facts(pages, seed)
    pdf = FPDF()
    pdf.set_auto_page_break(auto=False)
    pdf.set_font("Helvetica", size=11)
    for fact in made:
        pdf.add_page()
        sentences = rng.sample(FILLER, min(filler, len(FILLER)))
        sentences.insert(len(sentences) // 2, fact.sentence)
        lines = [f"Parish record, page {fact.page}", "", *textwrap.wrap(" ".join(sentences), 90)]
        for row, line in enumerate(lines):  # plain lines: fpdf2's own wrapping is slow
            pdf.text(20, 25 + 6 * row, line)
    return bytes(pdf.output()), made


def blank_pdf(pages: int = 3) -> bytes:
    """A PDF with pages but no text layer (like a scan): only a drawn box on each page."""
    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
        pdf.rect(20, 20, 100, 60)
    return bytes(pdf.output())
