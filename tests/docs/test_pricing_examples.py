"""The worked examples of docs/concepts/pricing.md, run against billplane.pricing.

Every ```pycon block of the page is a doctest; the blocks run in order with shared names, as a
reader would type them. A number in the page that the engine does not produce fails here.
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "concepts" / "pricing.md"
BLOCK = re.compile(r"^```pycon\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def pycon_blocks(markdown: str) -> list[tuple[int, str]]:
    """``(line number, text)`` of each pycon block."""
    return [(markdown.count("\n", 0, match.start(1)) + 1, match.group(1)) for match in BLOCK.finditer(markdown)]


def run_examples(markdown: str, name: str) -> doctest.TestResults:
    globs: dict[str, object] = {}
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for lineno, text in pycon_blocks(markdown):
        test = parser.get_doctest(text, globs, f"{name}:{lineno}", str(PAGE), lineno)
        runner.run(test, clear_globs=False)
        globs = test.globs  # DocTest copies its globals: carry the names on to the next block
    return runner.summarize(verbose=False)


def test_every_worked_example_of_the_pricing_page_holds() -> None:
    markdown = PAGE.read_text()
    blocks = pycon_blocks(markdown)
    # One block of setup and one per pricing model and proration: a page that lost its examples fails.
    assert len(blocks) >= 9
    results = run_examples(markdown, PAGE.name)
    assert results.attempted >= 25
    assert results.failed == 0, "a worked example in docs/concepts/pricing.md disagrees with billplane.pricing"


def test_a_wrong_number_in_an_example_fails() -> None:
    """The check itself can fail: change one amount of the page and the run reports it."""
    markdown = PAGE.read_text()
    wrong = markdown.replace("total: 87000", "total: 87001", 1)
    assert wrong != markdown
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(doctest.DocTestRunner, "report_failure", lambda *_args: None)
        assert run_examples(wrong, "altered").failed == 1
