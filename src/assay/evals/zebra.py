"""ZebraLogic-style grid puzzles: a seeded generator and our own solver.

A puzzle has N houses in a row (numbered 1..N from left to right) and M attributes (Name, Color, Pet, ...); each
attribute takes each of its N values in exactly one house. Clues relate values:

    position      "The person who keeps a cat lives in house 2."
    not_position  "The tea drinker does not live in house 1."
    same          "Alice is the person who drives a bus."
    not_same      "The owner of the red house is not the person who drinks milk."
    left_of       "The dog owner lives somewhere to the left of Bob."
    right_of      "... somewhere to the right of ..."
    directly_left "The dog owner lives directly left of Bob."   (house(x) + 1 == house(y))
    next_to       "The dog owner and Bob live next to each other."

The solver (``count_solutions``) is constraint propagation (per-value house domains as bitmasks, arc consistency on
binary clues, naked and hidden singles per attribute) plus backtracking; it counts solutions up to a limit, which is
how the generator proves a puzzle has exactly one. The generator adds random true clues until the solution is
unique, then drops every clue whose removal keeps it unique, so no clue is redundant.

Search-space size is (N!)^M; buckets follow ZebraLogic (Lin et al., 2025): small < 10^3, medium < 10^6,
large < 10^10, x-large otherwise.

Example:
    >>> p = generate(3, 3, seed=7)
    >>> count_solutions(p.n, p.attributes, p.clues) == 1
    True
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

# Attribute -> (value pool, phrase template for "the person who ..."). Pools have >= 6 distinct values.
ATTRIBUTES: dict[str, tuple[list[str], str]] = {
    "Name": (["Alice", "Bob", "Carol", "David", "Eric", "Fatima", "Grace", "Hiro"], "{v}"),
    "Color": (["red", "green", "blue", "yellow", "white", "purple", "orange"], "the person in the {v} house"),
    "Pet": (["cat", "dog", "bird", "fish", "rabbit", "horse", "turtle"], "the person who keeps a {v}"),
    "Drink": (["tea", "coffee", "milk", "water", "juice", "soda", "cocoa"], "the person who drinks {v}"),
    "Food": (["pizza", "pasta", "soup", "salad", "curry", "sushi", "tacos"], "the person who likes {v}"),
    "Hobby": (["chess", "painting", "hiking", "cooking", "gardening", "knitting", "fishing"],
              "the person whose hobby is {v}"),
    "Car": (["Ford", "Toyota", "Honda", "BMW", "Tesla", "Volvo", "Fiat"], "the person who drives a {v}"),
    "Music": (["jazz", "rock", "pop", "classical", "blues", "reggae", "folk"], "the person who listens to {v}"),
}
ATTRIBUTE_ORDER = ["Name", "Color", "Pet", "Drink", "Food", "Hobby", "Car", "Music"]

KINDS = ("position", "not_position", "same", "not_same", "left_of", "right_of", "directly_left", "next_to")
# Draw weights: relational clues dominate, as in published zebra puzzles; position clues are strong, so rarer.
_WEIGHTS = {"position": 1, "not_position": 2, "same": 4, "not_same": 2, "left_of": 2, "right_of": 1,
            "directly_left": 2, "next_to": 2}


@dataclass(frozen=True)
class Clue:
    kind: str
    a: tuple[str, str]  # (attribute, value)
    b: tuple[str, str] | None = None  # second item for binary clues
    house: int | None = None  # 1-based, for position clues

    def holds(self, where: dict[tuple[str, str], int]) -> bool:
        """True when the clue is satisfied by a full assignment item -> house (1-based)."""
        ha = where[self.a]
        if self.kind == "position":
            return ha == self.house
        if self.kind == "not_position":
            return ha != self.house
        hb = where[self.b]
        return _REL[self.kind](ha, hb)

    def text(self) -> str:
        x = _phrase(self.a)
        if self.kind == "position":
            return f"{_cap(x)} lives in house {self.house}."
        if self.kind == "not_position":
            return f"{_cap(x)} does not live in house {self.house}."
        y = _phrase(self.b)
        return {
            "same": f"{_cap(x)} is {y}.",
            "not_same": f"{_cap(x)} is not {y}.",
            "left_of": f"{_cap(x)} lives somewhere to the left of {y}.",
            "right_of": f"{_cap(x)} lives somewhere to the right of {y}.",
            "directly_left": f"{_cap(x)} lives directly left of {y}.",
            "next_to": f"{_cap(x)} and {y} live next to each other.",
        }[self.kind]


_REL = {
    "same": lambda i, j: i == j,
    "not_same": lambda i, j: i != j,
    "left_of": lambda i, j: i < j,
    "right_of": lambda i, j: i > j,
    "directly_left": lambda i, j: i + 1 == j,
    "next_to": lambda i, j: abs(i - j) == 1,
}


def _phrase(item: tuple[str, str]) -> str:
    attr, value = item
    return ATTRIBUTES[attr][1].format(v=value)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


@dataclass
class Puzzle:
    n: int  # houses
    attributes: dict[str, list[str]]  # attribute -> its N values (in the order the puzzle states them)
    solution: dict[int, dict[str, str]]  # house (1-based) -> attribute -> value
    clues: list[Clue] = field(default_factory=list)

    @property
    def m(self) -> int:
        return len(self.attributes)

    @property
    def size(self) -> str:
        return f"{self.n}x{self.m}"

    def to_json(self) -> dict:
        return {"n": self.n, "attributes": self.attributes,
                "solution": {str(h): row for h, row in self.solution.items()},
                "clues": [c.text() for c in self.clues]}


def search_space(n: int, m: int) -> int:
    return math.factorial(n) ** m


def bucket(n: int, m: int) -> str:
    """ZebraLogic's size classes by search-space size (N!)^M."""
    s = search_space(n, m)
    if s < 10**3:
        return "small"
    if s < 10**6:
        return "medium"
    if s < 10**10:
        return "large"
    return "x-large"


# ----------------------------------------------------------------------------------------------------------- solver

def _rel_masks(n: int) -> dict[str, list[int]]:
    """For each relation and house i (0-based): bitmask of houses j with rel(i, j)."""
    out = {}
    for kind, rel in _REL.items():
        out[kind] = [sum(1 << j for j in range(n) if rel(i, j)) for i in range(n)]
    return out


def _support(mask_a: int, mask_b: int, rel: list[int], n: int) -> int:
    """Houses in mask_a that have at least one partner in mask_b."""
    keep = 0
    for i in range(n):
        if mask_a >> i & 1 and rel[i] & mask_b:
            keep |= 1 << i
    return keep



class _Solver:
    def __init__(self, n: int, attributes: dict[str, list[str]], clues: list[Clue]):
        self.n = n
        self.items = [(a, v) for a, vals in attributes.items() for v in vals]
        self.index = {it: k for k, it in enumerate(self.items)}
        self.groups = [[self.index[(a, v)] for v in vals] for a, vals in attributes.items()]
        full = (1 << n) - 1
        self.init = [full] * len(self.items)
        masks = _rel_masks(n)
        self.binary: list[tuple[int, int, list[int], list[int]]] = []
        self.unsat = False
        for c in clues:
            ia = self.index[c.a]
            if c.kind == "position":
                self.init[ia] &= 1 << (c.house - 1)
            elif c.kind == "not_position":
                self.init[ia] &= ~(1 << (c.house - 1)) & full
            else:
                ib = self.index[c.b]
                if ia == ib:  # a clue about one item with itself: only "same" can hold
                    self.unsat |= c.kind != "same"
                    continue
                # (a, b, rel a->b, rel b->a); directly_left is not symmetric: b is a's right neighbour
                fwd = masks[c.kind]
                back = [sum(1 << j for j in range(n) if fwd[j] >> i & 1) for i in range(n)]
                self.binary.append((ia, ib, fwd, back))
        self.watch: list[list[int]] = [[] for _ in self.items]
        for k, (ia, ib, _, _) in enumerate(self.binary):
            self.watch[ia].append(k)
            self.watch[ib].append(k)
        self.group_of = {}
        for g, members in enumerate(self.groups):
            for it in members:
                self.group_of[it] = g

    def propagate(self, dom: list[int]) -> bool:
        """Shrink domains to a fixpoint in place; False on contradiction."""
        n = self.n
        changed = True
        while changed:
            changed = False
            for ia, ib, fwd, back in self.binary:
                da, db = dom[ia], dom[ib]
                na = _support(da, db, fwd, n)
                nb = _support(db, na, back, n)
                if not na or not nb:
                    return False
                if na != da or nb != db:
                    dom[ia], dom[ib] = na, nb
                    changed = True
            for members in self.groups:
                # naked singles: a placed value takes its house from the others
                for it in members:
                    d = dom[it]
                    if d & (d - 1) == 0:
                        for other in members:
                            if other != it and dom[other] & d:
                                dom[other] &= ~d
                                if not dom[other]:
                                    return False
                                changed = True
                # hidden singles: a house only one value can take; and every house must be taken by someone
                union = 0
                for it in members:
                    union |= dom[it]
                if union != (1 << n) - 1:
                    return False
                for h in range(n):
                    bit = 1 << h
                    who = [it for it in members if dom[it] & bit]
                    if len(who) == 1 and dom[who[0]] != bit:
                        dom[who[0]] = bit
                        changed = True
        return True

    def count(self, limit: int = 2) -> tuple[int, list[int] | None]:
        if self.unsat:
            return 0, None
        found: list[list[int]] = []

        def search(dom: list[int]) -> None:
            if len(found) >= limit or not self.propagate(dom):
                return
            best, best_size = -1, 99
            for k, d in enumerate(dom):
                size = bin(d).count("1")
                if 1 < size < best_size:
                    best, best_size = k, size
            if best < 0:
                found.append(dom)
                return
            d = dom[best]
            for h in range(self.n):
                if d >> h & 1:
                    child = dom[:]
                    child[best] = 1 << h
                    search(child)
                    if len(found) >= limit:
                        return

        search(self.init[:])
        return len(found), (found[0] if found else None)


def count_solutions(n: int, attributes: dict[str, list[str]], clues: list[Clue], limit: int = 2) -> int:
    """Number of solutions, counted up to ``limit`` (2 is enough to prove uniqueness)."""
    return _Solver(n, attributes, clues).count(limit)[0]


def solve(n: int, attributes: dict[str, list[str]], clues: list[Clue]) -> dict[int, dict[str, str]] | None:
    """The unique solution as house -> attribute -> value; None when there is none or more than one."""
    s = _Solver(n, attributes, clues)
    k, dom = s.count(2)
    if k != 1:
        return None
    out: dict[int, dict[str, str]] = {h: {} for h in range(1, n + 1)}
    for (attr, value), d in zip(s.items, dom):
        out[d.bit_length()][attr] = value
    return {h: {a: out[h][a] for a in attributes} for h in out}


# -------------------------------------------------------------------------------------------------------- generator

def _random_clue(rng: random.Random, n: int, where: dict[tuple[str, str], int], attrs: list[str]) -> Clue | None:
    kinds = list(_WEIGHTS)
    kind = rng.choices(kinds, weights=[_WEIGHTS[k] for k in kinds])[0]
    items = list(where)
    a = rng.choice(items)
    if kind == "position":
        return Clue(kind, a, house=where[a])
    if kind == "not_position":
        wrong = [h for h in range(1, n + 1) if h != where[a]]
        return Clue(kind, a, house=rng.choice(wrong))
    if len(attrs) < 2 and kind in ("same", "not_same"):
        return None
    rel = _REL[kind]
    # b from another attribute for same/not_same (a same-attribute pair is trivially "not same")
    cands = [b for b in items if b != a and rel(where[a], where[b])
             and not (kind in ("same", "not_same") and b[0] == a[0])]
    if not cands:
        return None
    return Clue(kind, a, rng.choice(cands))


def generate(n: int, m: int, seed: int | str = 0) -> Puzzle:
    """A puzzle with N houses and M attributes whose clues have exactly one solution and none is redundant."""
    if not (2 <= n <= 7 and 1 <= m <= len(ATTRIBUTE_ORDER)):
        raise ValueError(f"need 2 <= houses <= 7 and 1 <= attributes <= {len(ATTRIBUTE_ORDER)}, got {n}x{m}")
    rng = random.Random(f"zebra:{n}x{m}:{seed}")
    names = ["Name"] + rng.sample(ATTRIBUTE_ORDER[1:], m - 1)
    attributes = {a: rng.sample(ATTRIBUTES[a][0], n) for a in names}
    solution: dict[int, dict[str, str]] = {h: {} for h in range(1, n + 1)}
    where: dict[tuple[str, str], int] = {}
    for a, vals in attributes.items():
        perm = vals[:]
        rng.shuffle(perm)
        for h, v in enumerate(perm, start=1):
            solution[h][a] = v
            where[(a, v)] = h
    # the stated value order is not the solution order
    for a in attributes:
        attributes[a] = sorted(attributes[a])

    clues: list[Clue] = []
    seen: set[Clue] = set()
    guard = 0
    while count_solutions(n, attributes, clues) > 1:
        guard += 1
        if guard > 2000:  # cannot happen with position clues in the pool; a bug must not hang a run
            raise RuntimeError(f"zebra generator did not converge for {n}x{m} seed {seed}")
        # add a few clues per solver call: cheaper than one at a time, and minimisation removes the extras
        for _ in range(max(1, n * m // 6)):
            c = _random_clue(rng, n, where, names)
            if c is not None and c not in seen:
                seen.add(c)
                clues.append(c)
    # drop redundant clues (random order so no clue kind is favoured)
    order = list(range(len(clues)))
    rng.shuffle(order)
    keep = [True] * len(clues)
    for k in order:
        keep[k] = False
        if count_solutions(n, attributes, [c for c, kk in zip(clues, keep) if kk]) != 1:
            keep[k] = True
    clues = [c for c, kk in zip(clues, keep) if kk]
    rng.shuffle(clues)
    return Puzzle(n=n, attributes=attributes, solution=solution, clues=clues)
