"""Write ``src/assay/evals/data/tools_tasks.jsonl``: the tools suite's function-calling tasks, written for assay.

The functions and the query templates below are hand-written; the script fills the templates with values from
seeded lists so that the file is reproducible (run it again: the same bytes). Expected calls use BFCL's ground-truth
convention: each argument maps to a list of acceptable values, and ``""`` in that list means "may be left out".

Example:
    python benchmarks/make_tools_tasks.py && sha256sum src/assay/evals/data/tools_tasks.jsonl
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/assay/evals/data/tools_tasks.jsonl"


def fn(name, description, properties, required):
    return {"name": name, "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required}}


S = {"type": "string"}
F = {
    "get_weather": fn("get_weather", "Current weather and forecast for a city.", {
        "city": {**S, "description": "City name, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit (default celsius)"},
        "days": {"type": "integer", "description": "Forecast days, 1-7 (default 1)"}}, ["city"]),
    "convert_currency": fn("convert_currency", "Convert an amount of money between currencies.", {
        "amount": {"type": "number", "description": "Amount to convert"},
        "from_currency": {**S, "description": "ISO 4217 code, e.g. USD"},
        "to_currency": {**S, "description": "ISO 4217 code, e.g. EUR"}}, ["amount", "from_currency", "to_currency"]),
    "calculate_bmi": fn("calculate_bmi", "Body-mass index from weight and height.", {
        "weight_kg": {"type": "number", "description": "Weight in kilograms"},
        "height_m": {"type": "number", "description": "Height in metres"}}, ["weight_kg", "height_m"]),
    "book_flight": fn("book_flight", "Book a flight.", {
        "origin": {**S, "description": "Departure city"}, "destination": {**S, "description": "Arrival city"},
        "date": {**S, "description": "Departure date, YYYY-MM-DD"},
        "passengers": {"type": "integer", "description": "Number of passengers (default 1)"},
        "cabin": {"type": "string", "enum": ["economy", "premium", "business"], "description": "Cabin class"}},
        ["origin", "destination", "date"]),
    "send_email": fn("send_email", "Send an email.", {
        "to": {**S, "description": "Recipient email address"}, "subject": {**S, "description": "Subject line"},
        "body": {**S, "description": "Message text"}}, ["to", "subject"]),
    "set_reminder": fn("set_reminder", "Set a reminder at a time of day.", {
        "text": {**S, "description": "What to be reminded of"},
        "time": {**S, "description": "Time of day, HH:MM, 24-hour clock"}}, ["text", "time"]),
    "search_restaurants": fn("search_restaurants", "Find restaurants in a city.", {
        "city": S, "cuisine": {**S, "description": "Kind of food, e.g. italian"},
        "max_price": {"type": "integer", "description": "Price level from 1 (cheap) to 4 (expensive)"}}, ["city"]),
    "get_stock_price": fn("get_stock_price", "Latest price of a stock.", {
        "symbol": {**S, "description": "Ticker symbol, e.g. AAPL"}}, ["symbol"]),
    "translate_text": fn("translate_text", "Translate text into another language.", {
        "text": S, "target_language": {"type": "string", "enum": ["en", "fr", "de", "es", "it", "ja", "zh"],
                                       "description": "ISO 639-1 code of the target language"}},
        ["text", "target_language"]),
    "calculate_loan_payment": fn("calculate_loan_payment", "Monthly payment of a fixed-rate loan.", {
        "principal": {"type": "number", "description": "Amount borrowed"},
        "annual_rate": {"type": "number", "description": "Yearly interest rate in percent, e.g. 4.5"},
        "years": {"type": "integer", "description": "Term in years"}}, ["principal", "annual_rate", "years"]),
    "create_event": fn("create_event", "Create a calendar event.", {
        "title": S, "date": {**S, "description": "YYYY-MM-DD"}, "start_time": {**S, "description": "HH:MM"},
        "duration_minutes": {"type": "integer"},
        "attendees": {"type": "array", "items": S, "description": "Email addresses"}},
        ["title", "date", "start_time"]),
    "get_directions": fn("get_directions", "Route between two places.", {
        "origin": S, "destination": S,
        "mode": {"type": "string", "enum": ["driving", "walking", "transit", "cycling"]}}, ["origin", "destination"]),
    "convert_units": fn("convert_units", "Convert a quantity between units.", {
        "value": {"type": "number"}, "from_unit": {**S, "description": "e.g. km, mile, kg, lb"},
        "to_unit": S}, ["value", "from_unit", "to_unit"]),
    "find_hotels": fn("find_hotels", "Search hotels.", {
        "city": S, "check_in": {**S, "description": "YYYY-MM-DD"}, "nights": {"type": "integer"},
        "guests": {"type": "integer", "description": "default 1"}}, ["city", "check_in", "nights"]),
    "get_time": fn("get_time", "Current local time in a city.", {"city": S}, ["city"]),
    "calculate_tip": fn("calculate_tip", "Tip for a restaurant bill.", {
        "bill": {"type": "number"}, "percent": {"type": "number", "description": "Tip percentage, e.g. 15"},
        "people": {"type": "integer", "description": "Split between this many people (default 1)"}},
        ["bill", "percent"]),
    "order_pizza": fn("order_pizza", "Order pizza for delivery.", {
        "size": {"type": "string", "enum": ["small", "medium", "large"]},
        "toppings": {"type": "array", "items": S}, "quantity": {"type": "integer", "description": "default 1"}},
        ["size", "toppings"]),
    "create_contact": fn("create_contact", "Add a person to the address book.", {
        "name": S, "email": S, "address": {"type": "object", "properties": {
            "street": S, "city": S, "postcode": S}, "required": ["city"]}}, ["name", "email"]),
    "play_music": fn("play_music", "Play music.", {
        "artist": S, "song": S, "volume": {"type": "integer", "description": "0-100"}}, []),
    "circle_area": fn("circle_area", "Area of a circle.", {"radius": {"type": "number"}}, ["radius"]),
}

CITIES = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Toronto", "Madrid", "Seoul", "Nairobi", "Berlin", "Sydney",
          "Mumbai"]
PEOPLE = [("Ana Silva", "ana.silva@example.com"), ("Tom Berg", "tom.berg@example.org"),
          ("Li Wei", "li.wei@example.net"), ("Sara Cohen", "sara@example.com")]
DATES = [("March 14, 2026", "2026-03-14"), ("July 2, 2026", "2026-07-02"), ("October 30, 2026", "2026-10-30"),
         ("January 9, 2027", "2027-01-09")]
TIMES = [("7:30 in the morning", "07:30"), ("6 pm", "18:00"), ("noon", "12:00"), ("9:15 pm", "21:15")]
CURRENCIES = [("US dollars", "USD"), ("euros", "EUR"), ("Japanese yen", "JPY"), ("British pounds", "GBP"),
              ("Swiss francs", "CHF")]
LANGS = [("French", "fr"), ("German", "de"), ("Spanish", "es"), ("Japanese", "ja"), ("Italian", "it")]
PHRASES = ["Where is the train station?", "Thank you for your help.", "The meeting starts at nine.",
           "I would like a coffee, please."]
SYMBOLS = [("Apple", "AAPL"), ("Microsoft", "MSFT"), ("Nvidia", "NVDA"), ("Toyota", "TM")]
CUISINES = ["italian", "thai", "mexican", "indian", "japanese"]


class AnyOf(list):
    """Acceptable values of one argument, written out (any other value is wrapped as the only acceptable one)."""


def any_of(*values):
    return AnyOf(values)


def opt(v):
    return AnyOf([v, ""])


def call(fname, **args):
    return {"name": fname, "arguments": {k: list(v) if isinstance(v, AnyOf) else [v] for k, v in args.items()}}


def simple(rng: random.Random):
    """(function names, query, expected calls): one function offered, one call expected."""
    c, c2 = rng.sample(CITIES, 2)
    (dn, dv), (tn, tv) = rng.choice(DATES), rng.choice(TIMES)
    (cn1, cc1), (cn2, cc2) = rng.sample(CURRENCIES, 2)
    (ln, lc), ph = rng.choice(LANGS), rng.choice(PHRASES)
    (pn, pe), (sn, ss) = rng.choice(PEOPLE), rng.choice(SYMBOLS)
    amount = rng.choice([25, 120, 99.5, 1500, 42])
    w, h = rng.choice([62, 75.5, 90]), rng.choice([1.65, 1.8, 1.72])
    n = rng.randint(2, 5)
    return [
        (["get_weather"], f"What's the weather like in {c} right now?", [call("get_weather", city=c, unit=opt("celsius"), days=opt(1))]),
        (["get_weather"], f"Give me a {n}-day forecast for {c} in fahrenheit.", [call("get_weather", city=c, unit="fahrenheit", days=n)]),
        (["convert_currency"], f"How much is {amount} {cn1} in {cn2}?", [call("convert_currency", amount=amount, from_currency=cc1, to_currency=cc2)]),
        (["calculate_bmi"], f"I weigh {w} kg and I am {h} m tall. What is my BMI?", [call("calculate_bmi", weight_kg=w, height_m=h)]),
        (["book_flight"], f"Book me a flight from {c} to {c2} on {dn}.", [call("book_flight", origin=c, destination=c2, date=dv, passengers=opt(1), cabin=opt("economy"))]),
        (["book_flight"], f"I need {n} business class seats from {c} to {c2} on {dn}.", [call("book_flight", origin=c, destination=c2, date=dv, passengers=n, cabin="business")]),
        (["send_email"], f"Email {pe} with the subject 'Quarterly report' and say the numbers are ready.", [call("send_email", to=pe, subject="Quarterly report", body=opt("The numbers are ready"))]),
        (["set_reminder"], f"Remind me to water the plants at {tn}.", [call("set_reminder", text=any_of("water the plants", "water plants"), time=tv)]),
        (["search_restaurants"], f"Find {rng.choice(CUISINES)} restaurants in {c}.", None),
        (["get_stock_price"], f"What is {sn}'s stock trading at?", [call("get_stock_price", symbol=ss)]),
        (["translate_text"], f"Translate '{ph}' into {ln}.", [call("translate_text", text=ph, target_language=lc)]),
        (["calculate_loan_payment"], f"What's the monthly payment on a {rng.choice([200000, 350000])} loan at {rng.choice([4.5, 3.2])}% for {rng.choice([15, 30])} years?", None),
        (["get_directions"], f"How do I walk from {c} Central Station to the {c} Museum?", [call("get_directions", origin=f"{c} Central Station", destination=f"{c} Museum", mode="walking")]),
        (["convert_units"], f"Convert {n * 10} miles to kilometres.", [call("convert_units", value=n * 10, from_unit=any_of("mile", "miles", "mi"), to_unit=any_of("km", "kilometre", "kilometres", "kilometer", "kilometers"))]),
        (["find_hotels"], f"Find a hotel in {c} for {n} nights from {dn}.", [call("find_hotels", city=c, check_in=dv, nights=n, guests=opt(1))]),
        (["get_time"], f"What time is it in {c}?", [call("get_time", city=c)]),
        (["calculate_tip"], f"What's a 18% tip on a ${amount} bill split between {n} people?", [call("calculate_tip", bill=amount, percent=18, people=n)]),
        (["order_pizza"], "Order a large pizza with mushrooms and olives.", [call("order_pizza", size="large", toppings=any_of(["mushrooms", "olives"], ["mushroom", "olive"]), quantity=opt(1))]),
        (["create_contact"], f"Add {pn} ({pe}) to my contacts, living at 4 Elm Street, {c}.", [call("create_contact", name=pn, email=pe, address={"street": ["4 Elm Street", "4 Elm St"], "city": [c], "postcode": [""]})]),
        (["play_music"], "Play Bohemian Rhapsody by Queen at volume 60.", [call("play_music", artist="Queen", song="Bohemian Rhapsody", volume=60)]),
        (["circle_area"], f"What is the area of a circle with radius {n}.5 cm?", [call("circle_area", radius=float(f"{n}.5"))]),
    ]


def fill_none(name_list, query, expected, rng):
    """Templates whose expected call depends on the drawn values (written out here)."""
    import re

    if name_list == ["search_restaurants"]:
        cuisine, city = re.match(r"Find (\w+) restaurants in (\w+)\.", query).groups()
        return [call("search_restaurants", city=city, cuisine=cuisine, max_price=any_of(""))]
    if name_list == ["calculate_loan_payment"]:
        p, r, y = re.match(r".* (\d+) loan at ([\d.]+)% for (\d+) years", query).groups()
        return [call("calculate_loan_payment", principal=int(p), annual_rate=float(r), years=int(y))]
    return expected


def main() -> None:
    rng = random.Random(20261202)
    tasks = []

    def add(cat, names, query, expected):
        tasks.append({"id": f"tools-{cat}-{sum(t['category'] == cat for t in tasks) + 1:03d}", "category": cat,
                      "question": query, "functions": [F[n] for n in names], "expected": expected})

    # simple: 42 (two draws of each of the 21 templates)
    for draw in range(2):
        for names, q, exp in simple(rng):
            add("simple", names, q, fill_none(names, q, exp, rng))
    # multiple: the same kinds of request, among 3-4 functions (the right one plus distractors)
    others = sorted(F)
    for draw in range(2):
        for names, q, exp in simple(rng)[draw::2][:13]:
            exp = fill_none(names, q, exp, rng)
            offered = names + rng.sample([o for o in others if o not in names], rng.choice([2, 3]))
            rng.shuffle(offered)
            add("multiple", offered, q, exp)
    # parallel: several calls in one reply
    for _ in range(3):
        a, b, c = rng.sample(CITIES, 3)
        add("parallel", ["get_weather"], f"What's the weather in {a} and in {b}?",
            [call("get_weather", city=a, unit=opt("celsius"), days=opt(1)),
             call("get_weather", city=b, unit=opt("celsius"), days=opt(1))])
        add("parallel", ["get_time"], f"What time is it in {a}, {b} and {c}?",
            [call("get_time", city=x) for x in (a, b, c)])
        (n1, c1), (n2, c2), (n3, c3) = rng.sample(CURRENCIES, 3)
        amt = rng.choice([10, 250, 80])
        add("parallel", ["convert_currency"], f"Convert {amt} {n1} into both {n2} and {n3}.",
            [call("convert_currency", amount=amt, from_currency=c1, to_currency=c2),
             call("convert_currency", amount=amt, from_currency=c1, to_currency=c3)])
        (l1, k1), (l2, k2) = rng.sample(LANGS, 2)
        ph = rng.choice(PHRASES)
        add("parallel", ["translate_text"], f"Translate '{ph}' into {l1} and into {l2}.",
            [call("translate_text", text=ph, target_language=k1), call("translate_text", text=ph, target_language=k2)])
        (s1, y1), (s2, y2) = rng.sample(SYMBOLS, 2)
        add("parallel", ["get_stock_price", "get_weather"], f"Get the stock prices of {s1} and {s2}.",
            [call("get_stock_price", symbol=y1), call("get_stock_price", symbol=y2)])
        tn, tv = rng.choice(TIMES)
        add("parallel", ["set_reminder", "get_weather"],
            f"Remind me to call mum at {tv} and tell me the weather in {a}.",
            [call("set_reminder", text=any_of("call mum", "call my mum"), time=tv),
             call("get_weather", city=a, unit=opt("celsius"), days=opt(1))])
        w = rng.randint(2, 9)
        add("parallel", ["circle_area"], f"Compute the areas of circles with radii {w} and {w + 3}.",
            [call("circle_area", radius=w), call("circle_area", radius=w + 3)])
    # irrelevance: no offered function fits -> no call
    irrelevant = [
        (["get_weather"], "Tell me a joke about cats."),
        (["convert_currency"], "Who wrote Pride and Prejudice?"),
        (["calculate_bmi"], "What is the capital of Australia?"),
        (["book_flight"], "Summarise the plot of Hamlet in two sentences."),
        (["send_email"], "What is 17 times 23?"),
        (["set_reminder", "get_time"], "Write a haiku about autumn leaves."),
        (["search_restaurants"], "How many legs does a spider have?"),
        (["get_stock_price"], "Explain what photosynthesis is."),
        (["translate_text", "circle_area"], "Who painted the Mona Lisa?"),
        (["calculate_loan_payment"], "What is the boiling point of water at sea level?"),
        (["get_directions"], "Recommend a good science fiction novel."),
        (["convert_units", "get_weather"], "What year did the first moon landing happen?"),
        (["find_hotels"], "Give me three tips for better sleep."),
        (["calculate_tip", "order_pizza"], "What does DNA stand for?"),
        (["create_contact"], "Describe the rules of chess briefly."),
        (["play_music"], "What is the square root of 144?"),
        (["circle_area"], "What is the area of a square with side 4?"),
        (["get_time"], "What is the weather in Rome?"),
        (["get_weather"], "Book me a table for two in Paris tonight."),
        (["translate_text"], "What is the price of Apple stock?"),
        (["order_pizza", "play_music"], "Send an email to my boss saying I am late."),
    ]
    for names, q in irrelevant:
        add("irrelevance", names, q, [])
    OUT.write_text("".join(json.dumps(t, ensure_ascii=False, sort_keys=True) + "\n" for t in tasks), encoding="utf-8")
    counts = {c: sum(t["category"] == c for t in tasks) for c in ("simple", "multiple", "parallel", "irrelevance")}
    print(OUT, len(tasks), counts)


if __name__ == "__main__":
    main()
