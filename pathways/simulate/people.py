"""Synthetic people: made-up names, postcodes, phone numbers and National Insurance
numbers. Nothing here describes anyone real.

NINOs are drawn at random under the contract's rules (§2) and never repeat within a
story; phone numbers come from Ofcom's range reserved for drama (07700 900000-900999).
"""

from __future__ import annotations

import random
import string

NINO_FIRST = [c for c in string.ascii_uppercase if c not in "DFIQUV"]
NINO_SECOND = [c for c in string.ascii_uppercase if c not in "DFIOQUV"]
NINO_BAD_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def nino_is_valid(nino: str) -> bool:
    """The contract's rules (§2): used to check the generator, not to generate."""
    return (
        len(nino) == 9
        and nino[0] in NINO_FIRST
        and nino[1] in NINO_SECOND
        and nino[:2] not in NINO_BAD_PREFIXES
        and nino[2:8].isdigit()
        and nino[8] in "ABCD"
    )


def random_nino(rng: random.Random) -> str:
    while True:
        prefix = rng.choice(NINO_FIRST) + rng.choice(NINO_SECOND)
        if prefix not in NINO_BAD_PREFIXES:
            return f"{prefix}{rng.randrange(10**6):06d}{rng.choice('ABCD')}"


GIVEN_NAMES_FEMALE = [
    "Amelia",
    "Ava",
    "Chloe",
    "Danielle",
    "Demi",
    "Ella",
    "Emma",
    "Gemma",
    "Grace",
    "Hannah",
    "Holly",
    "Jade",
    "Jasmine",
    "Jessica",
    "Kayleigh",
    "Kirsty",
    "Laura",
    "Leah",
    "Lauren",
    "Lucy",
    "Megan",
    "Mia",
    "Nadia",
    "Natalie",
    "Niamh",
    "Olivia",
    "Paige",
    "Rachel",
    "Rebecca",
    "Samina",
    "Sophie",
    "Stacey",
    "Tanya",
    "Zara",
    "Aisha",
    "Bernadette",
    "Carol",
    "Denise",
    "Elaine",
    "Fatima",
    "Gail",
    "Hazel",
    "Irene",
    "Janet",
    "Joanne",
    "Karen",
    "Linda",
    "Lorraine",
    "Maureen",
    "Nicola",
    "Pauline",
    "Sandra",
    "Sharon",
    "Tracey",
]
GIVEN_NAMES_MALE = [
    "Aaron",
    "Adam",
    "Ahmed",
    "Alex",
    "Ben",
    "Bilal",
    "Callum",
    "Carl",
    "Connor",
    "Craig",
    "Daniel",
    "Darren",
    "Dean",
    "Declan",
    "Ethan",
    "Gareth",
    "Harry",
    "Imran",
    "Jack",
    "Jake",
    "Jamie",
    "Jason",
    "Joe",
    "Jordan",
    "Kieran",
    "Kyle",
    "Lee",
    "Liam",
    "Luke",
    "Mark",
    "Matthew",
    "Michael",
    "Mohammed",
    "Nathan",
    "Neil",
    "Owen",
    "Paul",
    "Reece",
    "Ryan",
    "Sam",
    "Scott",
    "Shane",
    "Stephen",
    "Steven",
    "Tariq",
    "Tom",
    "Tony",
    "Usman",
    "Wayne",
    "Barry",
    "Colin",
    "Gary",
    "Graham",
    "Keith",
    "Kevin",
    "Martin",
    "Nigel",
    "Peter",
    "Roy",
    "Terry",
]
GIVEN_NAMES_OTHER = [
    "Alex",
    "Charlie",
    "Jordan",
    "Morgan",
    "Robin",
    "Sam",
    "Sky",
    "Jamie",
    "Kit",
    "Ashley",
]
FAMILY_NAMES = [
    "Ahmed",
    "Akhtar",
    "Ali",
    "Allen",
    "Bailey",
    "Baker",
    "Barnes",
    "Begum",
    "Bennett",
    "Brooks",
    "Brown",
    "Butler",
    "Campbell",
    "Carter",
    "Clarke",
    "Collins",
    "Cooper",
    "Cox",
    "Davies",
    "Dixon",
    "Doherty",
    "Edwards",
    "Evans",
    "Fletcher",
    "Foster",
    "Gibson",
    "Gordon",
    "Graham",
    "Green",
    "Hall",
    "Harris",
    "Harrison",
    "Hill",
    "Holmes",
    "Hughes",
    "Hunt",
    "Hussain",
    "Iqbal",
    "Jackson",
    "James",
    "Johnson",
    "Jones",
    "Kaur",
    "Kelly",
    "Khan",
    "King",
    "Knowles",
    "Lee",
    "Lewis",
    "Lloyd",
    "Marsden",
    "Marshall",
    "Martin",
    "Mason",
    "Mellor",
    "Miah",
    "Mitchell",
    "Moore",
    "Morris",
    "Murphy",
    "Murray",
    "Nolan",
    "O'Brien",
    "Owen",
    "Parker",
    "Patel",
    "Pearson",
    "Phillips",
    "Price",
    "Rahman",
    "Reid",
    "Richards",
    "Roberts",
    "Robinson",
    "Rogers",
    "Ryan",
    "Schofield",
    "Shah",
    "Shaw",
    "Simpson",
    "Singh",
    "Smith",
    "Stott",
    "Taylor",
    "Thomas",
    "Thompson",
    "Turner",
    "Walker",
    "Ward",
    "Watson",
    "White",
    "Whittaker",
    "Wilkinson",
    "Williams",
    "Wilson",
    "Wood",
    "Worthington",
    "Wright",
    "Young",
    "Ashworth",
    "Hargreaves",
    "Heywood",
    "Holt",
    "Kenyon",
    "Lomax",
    "Ogden",
    "Pilkington",
    "Ramsbottom",
    "Stansfield",
    "Tattersall",
    "Unsworth",
]

# Outward codes of the postcode districts in each area (a plausible spread, not a gazetteer).
OUTWARD_CODES: dict[str, tuple[str, ...]] = {
    "Bolton": ("BL1", "BL2", "BL3", "BL4", "BL5", "BL6"),
    "Bury": ("BL8", "BL9", "M26", "M45"),
    "Oldham": ("OL1", "OL4", "OL8", "OL9", "M35"),
    "Rochdale": ("OL11", "OL12", "OL16", "OL10", "M24"),
    "Stockport": ("SK1", "SK2", "SK3", "SK4", "SK5", "SK7"),
    "Tameside": ("OL6", "OL7", "SK14", "SK15", "SK16", "M34"),
    "Wigan": ("WN1", "WN2", "WN3", "WN5", "WN6", "WN7"),
    "Manchester": ("M8", "M9", "M11", "M12", "M13", "M14", "M18", "M22", "M23", "M40"),
    "Salford": ("M3", "M5", "M6", "M7", "M27", "M30"),
    "Trafford": ("M16", "M32", "M33", "M41", "WA14", "WA15"),
    # Neighbouring areas no provider covers: their referrals are rejected outside_area.
    "Warrington": ("WA1", "WA2", "WA4", "WA5"),
    "Blackburn with Darwen": ("BB1", "BB2", "BB3"),
    "High Peak": ("SK22", "SK23", "SK17"),
    "Calderdale": ("HX1", "HX2", "HX6"),
}
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the letters Royal Mail uses in inward codes


def postcode(rng: random.Random, local_authority: str) -> str:
    outward = rng.choice(OUTWARD_CODES[local_authority])
    inward = f"{rng.randrange(10)}{rng.choice(INWARD_LETTERS)}{rng.choice(INWARD_LETTERS)}"
    return f"{outward} {inward}"


def phone(rng: random.Random) -> str:
    return f"07700 900{rng.randrange(1000):03d}"


EMPLOYERS = (
    "Northern Parcel Hub",
    "Irwell Valley Care",
    "Pennine Facilities Services",
    "Mersey Logistics",
    "Tameside Community Kitchens",
    "Red Rose Retail",
    "Ship Canal Warehousing",
    "Moorside Cleaning Co-operative",
    "Greater Manchester Buses",
    "Quayside Hospitality",
    "Bridgewater Home Care",
    "Medlock Print Works",
    "Kersal Garden Centre",
    "Etherow Engineering",
    "Beacon Contact Centre",
    "Roch Valley Foods",
    "Castlefield Events",
    "Douglas Valley Farm Shop",
)
SELF_EMPLOYMENT = (
    "self-employed: window cleaning",
    "self-employed: painting and decorating",
    "self-employed: hairdressing",
    "self-employed: courier",
    "self-employed: dog walking",
    "self-employed: market stall",
)
KEY_WORKERS_PER_PROVIDER = 40

SESSION_NOTES = (
    "Reviewed action plan.",
    "CV updated and two applications sent.",
    "Discussed better-off calculation.",
    "Mock interview practice.",
    "Referred to talking therapies.",
    "Budgeting support; debt advice booked.",
    "Confidence course attended.",
    "Job search and employer introductions.",
    "In-work check-in: hours and rota going well.",
    "Digital skills session: online applications.",
)
