"""The math scorer on real, nasty completion strings (no model)."""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from assay.evals.base import Sample
from assay.evals.mathlib import clean_answer, extract_answer, find_boxed, score_math
from assay.evals.suites import get_suite

# (completion, gold, expected value)
CASES = [
    ("The answer is \\boxed{23}.", "23", 1.0),
    ("\\boxed{23.0}", "23", 1.0),
    ("\\boxed{\\frac{1}{2}}", "0.5", 1.0),
    ("\\boxed{0.5}", "\\frac{1}{2}", 1.0),
    ("**\\boxed{\\dfrac{1}{2}}**", "\\frac12", 1.0),
    ("\\boxed{\\tfrac{3}{4}}", "0.75", 1.0),
    ("So the area is \\boxed{16 - 4π}", "16-4\\pi", 1.0),
    ("\\boxed{16-4\\pi}", "16 - 4\\pi", 1.0),
    ("\\boxed{4\\pi - 16}", "16-4\\pi", 0.0),
    ("First try \\boxed{3}. Wait, I made an error. \\boxed{5}", "5", 1.0),
    ("First try \\boxed{5}. Wait, I made an error. \\boxed{3}", "5", 0.0),
    ("\\fbox{42}", "42", 1.0),
    ("**Final answer:** **\\boxed{-7}**", "-7", 1.0),
    ("\\boxed{-7}", "7", 0.0),
    ("\\boxed{1,234}", "1234", 1.0),
    ("\\boxed{1,234,567}", "1234567", 1.0),
    ("\\boxed{15\\,600}", "15600", 1.0),
    ("\\boxed{15{,}600}", "15600", 1.0),
    ("\\boxed{32\\%}", "32", 1.0),
    ("The mixture is 32% salt. The answer is 32%.", "32", 1.0),
    ("\\boxed{24.5 \\text{ litres}}", "24.5", 1.0),
    ("\\boxed{\\text{7 cows}}", "7", 1.0),
    ("\\boxed{864 \\mbox{ inches}^2}", "864", 1.0),
    ("\\boxed{135^\\circ}", "135", 1.0),
    ("\\boxed{\\$4.25}", "4.25", 1.0),
    ("\\boxed{x = 3}", "3", 1.0),
    ("\\boxed{\\sqrt{50}}", "5\\sqrt{2}", 1.0),
    ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt3}{2}", 1.0),
    ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)", 1.0),
    ("\\boxed{\\begin{pmatrix} -2 \\\\ -14 \\\\ -7 \\end{pmatrix}}", "\\begin{pmatrix} -2 \\\\ -14 \\\\ -7 \\end{pmatrix}",
     1.0),
    ("\\boxed{\\begin{pmatrix} -2 \\\\ 14 \\\\ -7 \\end{pmatrix}}", "\\begin{pmatrix} -2 \\\\ -14 \\\\ -7 \\end{pmatrix}",
     0.0),
    ("\\boxed{\\text{Evelyn}}", "\\text{Evelyn}", 1.0),
    ("The final answer is $\\boxed{9}$. I hope it is correct.", "9", 1.0),
    ("Therefore, the answer is 12 because 3 times 4 is 12.", "12", 1.0),
    ("Final answer: 4.25", "\\frac{17}{4}", 1.0),
    ("the answer is \\(\\frac{3}{8}\\).", "0.375", 1.0),
    ("The answer is $-\\frac{2}{3}$", "-\\frac23", 1.0),
    ("Janet makes 9 * 2 = 18 dollars.\n#### 18", "18", 1.0),
    ("<think>Let me see, 2+2=4.</think>\n\\boxed{4}", "4", 1.0),
    ("<think>the box \\boxed{5} is a draft</think> so \\boxed{4}", "4", 1.0),
    ("\\boxed 5", "5", 1.0),
    ("\\boxed{{2}}", "2", 1.0),
    ("\\boxed{2}", "3", 0.0),
    ("\\boxed{0.3333}", "\\frac{1}{3}", 0.0),  # a rounded decimal is not the fraction
    ("**Final Answer**: 42", "42", 1.0),
    ("answer = 3.5 m", "3.5", 1.0),
    ("the answer is: $x=4$", "4", 1.0),
]

UNPARSED = [
    "",
    "   \n ",
    "<think>I am still thinking about \\boxed{5}",  # unclosed think: no answer
    "I don't know how to solve this.",
    "The answer is below.",
    "\\boxed{}",
    "\\boxed{3",  # never closed
    "To answer this: 5 apples are left, I think.",  # 'answer' without a connector is not an answer phrase
]


@pytest.mark.parametrize("completion,gold,value", CASES)
def test_score_cases(completion, gold, value):
    s = score_math(completion, gold)
    assert s.parsed, s
    assert s.value == value, (completion, gold, s)


@pytest.mark.parametrize("completion", UNPARSED)
def test_unparsed_is_not_a_silent_zero(completion):
    s = score_math(completion, "5")
    assert s.parsed is False and s.value == 0.0 and s.extracted is None


def test_find_boxed_nested_and_escaped_braces():
    assert find_boxed("a \\boxed{\\frac{a}{\\sqrt{b}}} b \\fbox{x} c") == ["\\frac{a}{\\sqrt{b}}", "x"]
    assert find_boxed("\\boxed{\\{1, 2\\}}") == ["\\{1, 2\\}"]
    assert find_boxed("no box here") == []


def test_extraction_reports_how():
    assert extract_answer("\\boxed{1}") == ("1", "boxed")
    assert extract_answer("#### 1,000") == ("1,000", "hash")
    assert extract_answer("So the final answer is 7.")[1] == "phrase"


def test_clean_answer_strips_markup_not_content():
    assert clean_answer(" **$\\dfrac{1}{2}$** ") == "\\frac{1}{2}"
    assert clean_answer("12 \\text{ cm}^2") == "12"
    assert clean_answer("\\text{(C)}") == "(C)"


def test_scoring_works_off_the_main_thread():
    # Math-Verify's SIGALRM timeout raises in threads unless disabled: the runner may score anywhere
    with ThreadPoolExecutor(2) as ex:
        results = list(ex.map(lambda c: score_math(c, "16-4\\pi").value, ["\\boxed{16 - 4π}", "\\boxed{12}"]))
    assert results == [1.0, 0.0]


def test_suite_and_sample_pickle_into_a_process_pool():
    suite = get_suite("math")
    assert suite.slow_scoring is True
    sample = next(iter(suite.samples(0, 1)))
    suite2 = pickle.loads(pickle.dumps(suite))
    with ProcessPoolExecutor(1) as ex:
        s = ex.submit(suite2.score, f"so \\boxed{{{sample.target}}}", sample).result(timeout=120)
    assert s.value == 1.0


def test_suite_messages_ask_for_steps_and_boxed():
    suite = get_suite("math")
    sample = Sample(id="t", input={"question": "What is 2+2?"}, target="4")
    msg = suite.messages(sample)
    assert msg[-1]["role"] == "user"
    text = msg[-1]["content"]
    assert "What is 2+2?" in text and "\\boxed{" in text and "step by step" in text
